// Public API of src/eval: log-likelihood scoring, multiple-choice decisions, perplexity, generative exact match,
// the lighteval v0.7 task prompts and the evaluation runner.
export * from './loglikelihood';
export * from './multiple-choice';
export * from './perplexity';
export * from './generative';
export * from './tasks';
export * from './datasets';
export * from './run';
export * from './unigram';
