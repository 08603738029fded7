/**
 * Run benchmark tasks and perplexity on a model and collect one result row per (task, metric):
 * `{ task, metric, value, stderr, n, shots, model, backend, seconds }` (what `wm eval` writes and prints).
 *
 *   const rows = await evaluateTasks(model, tokenizer, { tasks: ['arc_easy', 'embedded'], dataDir: 'data', limit: 100 });
 *   console.log(formatResultsTable(rows));
 *
 * Text becomes token ids the way lighteval v0.7 does it (spec 3.2 step 2): the context's trailing whitespace moves
 * to the continuation, whole = encode(context + continuation), context = encode(context), both with the
 * tokenizer's special tokens; the continuation is whole[len(context):] (the last context token counts as
 * continuation when it merged with it); an empty context is [EOS].
 */
import { tf } from '../tf';
import { scoreContinuations, singleTokenScores, type ContinuationRequest, type EvalModel } from './loglikelihood';
import { mcDecisions, type McMetric } from './multiple-choice';
import { perplexity } from './perplexity';
import { greedyUntil, triviaqaExactMatch } from './generative';
import { fewshotContext, splitTrailingSpace, type TaskDoc } from './tasks';
import { evalTask, loadTaskDocs, selectShots, type TaskDataOptions } from './datasets';

/** What evaluation needs of a tokenizer (src/data's WmTokenizer has it). */
export interface EvalTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[]): string;
  eosTokenId?: number;
  eosToken?: string;
  /** The chat template (chat-format tasks such as embedded_chat need it). */
  applyChatTemplate?(messages: { role: string; content: string }[], options?: { addGenerationPrompt?: boolean }): string;
}

/** One number of a run. `stderr` is null where none is defined (perplexity). */
export interface EvalResult {
  task: string;
  metric: string;
  value: number;
  stderr: number | null;
  /** Items (questions, documents) behind the value. */
  n: number;
  shots: number;
  model: string;
  backend: string;
  /** Wall time of the task. */
  seconds: number;
  /** Log-likelihood requests (or generations) per second of the task. */
  requestsPerSecond?: number;
}

export interface EvaluateOptions extends TaskDataOptions {
  tasks: string[];
  /** Shots for every task (default: each task's own, 5 for the seed's tasks, 0 for embedded). */
  shots?: number;
  /** Seed of the few-shot draws (default 42, lighteval's). */
  seed?: number;
  /** Longest model input (default the model's max_position_embeddings, the seed's 2048). */
  maxLength?: number;
  batchSize?: number;
  /** Name of the model in the result rows (default 'model'). */
  modelName?: string;
  /** Evaluation and few-shot rows of the embedded benchmarks (ARC layout + answer_prefix; tasks embedded, embedded_chat). */
  embeddedRows?: { eval: object[]; fewshot?: object[] };
  /** Progress lines (default console.error; null = quiet). */
  log?: boolean;
  onLog?: (line: string) => void;
  /** Called once per evaluated item with its scores (1/0 per metric), e.g. for per-category accuracies. */
  onItem?: (item: { task: string; index: number; where: string; group?: string; scores: Record<string, number> }) => void;
  /** Called with each task's rows as soon as the task finishes (e.g. to save them before the next task runs). */
  onTask?: (rows: EvalResult[]) => void;
}

/**
 * lighteval's tok_encode_pair on strings. `addSpecialTokens` false for contexts rendered by a chat template (they
 * carry their own BOS, if any: spec 5, never double BOS).
 */
export function encodePair(tok: EvalTokenizer, context: string, continuation: string, addSpecialTokens = true): ContinuationRequest {
  const s = splitTrailingSpace(context, continuation);
  if (s.context === '') {
    if (tok.eosTokenId === undefined) throw new Error('an empty context needs the tokenizer\'s EOS id');
    return { context: [tok.eosTokenId], continuation: tok.encode(s.continuation, { addSpecialTokens: false }) };
  }
  const whole = tok.encode(s.context + s.continuation, { addSpecialTokens });
  const ctx = tok.encode(s.context, { addSpecialTokens });
  const ctxLen = ctx.length === whole.length ? ctx.length - 1 : ctx.length;
  return { context: ctx.length === whole.length ? whole.slice(0, ctxLen) : ctx, continuation: whole.slice(ctxLen) };
}

/**
 * The context of a chat-format doc (lighteval's use_chat_template): each shot is a user turn and the assistant's
 * full answer (prefix + gold choice), then the question as a user turn, the generation prompt and the answer
 * prefix the choices complete:
 *   render([user q1, assistant "Tom's hat is blue", user q], generation prompt) + "Ann's cup is"
 */
export function chatContext(tok: EvalTokenizer, doc: TaskDoc, shots: TaskDoc[] = [], where = 'chat task'): string {
  if (!doc.chat) throw new Error(`${where}: not a chat-format item (no user turn / answer prefix)`);
  if (!tok.applyChatTemplate) throw new Error(`${where}: a chat-format task needs a tokenizer with a chat template`);
  const messages: { role: string; content: string }[] = [];
  for (const s of shots) {
    if (!s.chat) throw new Error(`${where}: a few-shot item is not in chat format`);
    const gold = Array.isArray(s.gold) ? s.gold[0] : s.gold;
    messages.push({ role: 'user', content: s.chat.user }, { role: 'assistant', content: `${s.chat.answerPrefix}${s.choices[gold]}.` });
  }
  messages.push({ role: 'user', content: doc.chat.user });
  return tok.applyChatTemplate(messages, { addGenerationPrompt: true }) + doc.chat.answerPrefix;
}

/** Mean and standard error of the mean (sample std with ddof 1, as lighteval's mean_stderr). */
export function meanStderr(values: number[]): { mean: number; stderr: number } {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, stderr: 0 };
  const v = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, stderr: Math.sqrt(v / n) };
}

function backendName(): string {
  try {
    return tf.getBackend() ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Evaluate every task of `options.tasks` (names as in EVAL_TASK_NAMES; checked before anything runs). */
export async function evaluateTasks(model: EvalModel, tok: EvalTokenizer, options: EvaluateOptions): Promise<EvalResult[]> {
  const tasks = options.tasks.map((t) => evalTask(t.trim())); // unknown names fail here, before any work
  const say = options.onLog ?? (options.log === false ? () => {} : (l: string) => console.error(l));
  const out: EvalResult[] = [];
  for (const task of tasks) {
    const t0 = Date.now();
    const shots = options.shots ?? task.shots ?? task.defaultShots;
    const rows = task.dataset === 'embedded' ? options.embeddedRows : undefined;
    if (task.dataset === 'embedded' && !rows) throw new Error(`task ${task.name}: no benchmark rows given (embeddedRows)`);
    const data = await loadTaskDocs(task, { ...options, rows }, shots > 0);
    const shotLists = selectShots(task, data, shots, options.seed ?? 42);
    const chat = task.chat === true;
    const contexts = data.docs.map((d, i) => (chat ? chatContext(tok, d.doc, shotLists[i], `${task.name}: ${d.where}`) : fewshotContext(d.doc, shotLists[i])));
    const base = { task: task.name, shots, model: options.modelName ?? 'model', backend: backendName() };
    let perItem: Record<string, number[]>;
    let requests = 0;
    const progress = (done: number, total: number, what: string) => {
      const sec = (Date.now() - t0) / 1000;
      say(`[eval] ${task.name}: ${done}/${total} ${what} | ${(done / Math.max(sec, 1e-9)).toFixed(1)} ${what}/s | ${sec.toFixed(1)} s`);
    };
    let lastPrint = 0;
    const throttled = (done: number, total: number, what: string) => {
      if (done === total || Date.now() - lastPrint > 2000) { lastPrint = Date.now(); progress(done, total, what); }
    };

    if (task.kind === 'loglikelihood') {
      const reqs: ContinuationRequest[] = [];
      const owner: number[] = [];
      data.docs.forEach((d, i) => d.doc.choices.forEach((c) => { reqs.push(encodePair(tok, contexts[i], c, !chat)); owner.push(i); }));
      requests = reqs.length;
      const scores = scoreContinuations(model, reqs, { maxLength: options.maxLength, batchSize: options.batchSize, onProgress: (a, b) => throttled(a, b, 'requests') });
      const metrics = task.metrics as McMetric[];
      perItem = Object.fromEntries(metrics.map((m) => [m, [] as number[]]));
      let k = 0;
      for (const d of data.docs) {
        const mine = d.doc.choices.map(() => scores[k++]);
        const dec = mcDecisions(mine.map((s) => s.sum), d.doc.choices, mine.map((s) => s.tokenLogprobs.length), d.doc.gold);
        for (const m of metrics) perItem[m].push(dec.correct[m]);
      }
    } else if (chat) {
      throw new Error(`task ${task.name}: chat contexts are implemented for log-likelihood tasks only`);
    } else if (task.kind === 'single_token') {
      const choiceIds = (doc: TaskDoc, where: string) => doc.choices.map((c) => {
        const ids = tok.encode(c, { addSpecialTokens: false });
        if (ids.length !== 1) throw new Error(`${where}: choice ${JSON.stringify(c)} is ${ids.length} tokens; single-token scoring needs one`);
        return ids[0];
      });
      const reqs = data.docs.map((d, i) => ({ context: contexts[i] === '' ? [tok.eosTokenId ?? 0] : tok.encode(contexts[i], { addSpecialTokens: true }), choiceIds: choiceIds(d.doc, d.where) }));
      requests = reqs.length;
      const lps = singleTokenScores(model, reqs, { maxLength: options.maxLength, batchSize: options.batchSize, onProgress: (a, b) => throttled(a, b, 'questions') });
      perItem = { acc: data.docs.map((d, i) => {
        const lp = lps[i];
        let best = 0;
        for (let j = 1; j < lp.length; j++) if (lp[j] > lp[best]) best = j;
        return ([] as number[]).concat(d.doc.gold).includes(best) ? 1 : 0;
      }) };
    } else {
      const stopStrings = ['\n', '.', ','];
      if (tok.eosToken) stopStrings.push(tok.eosToken);
      const em: number[] = [];
      data.docs.forEach((d, i) => {
        const ids = contexts[i] === '' ? [tok.eosTokenId ?? 0] : tok.encode(contexts[i], { addSpecialTokens: true });
        const r = greedyUntil(model, ids, {
          stopIds: tok.eosTokenId === undefined ? [] : [tok.eosTokenId], stopStrings, maxNewTokens: 20, maxLength: options.maxLength,
          decode: (x) => tok.decode(x),
        });
        em.push(triviaqaExactMatch(r.text ?? '', d.doc.choices));
        throttled(i + 1, data.docs.length, 'generations');
      });
      requests = em.length;
      perItem = { qem: em };
    }

    if (options.onItem) {
      data.docs.forEach((d, index) => options.onItem!({
        task: task.name, index, where: d.where, group: d.group,
        scores: Object.fromEntries(Object.entries(perItem).map(([m, v]) => [m, v[index]])),
      }));
    }
    const seconds = (Date.now() - t0) / 1000;
    for (const [metric, values] of Object.entries(perItem)) {
      let value: number;
      let stderr: number;
      if (task.groupOf && !(task as { subject?: string }).subject) {
        // MMLU: each subject is its own task; the reported score is the mean of the subject scores
        const groups = new Map<string, number[]>();
        data.docs.forEach((d, i) => { if (!groups.has(d.group!)) groups.set(d.group!, []); groups.get(d.group!)!.push(values[i]); });
        const per = [...groups.values()].map(meanStderr);
        value = per.reduce((a, b) => a + b.mean, 0) / per.length;
        stderr = Math.sqrt(per.reduce((a, b) => a + b.stderr ** 2, 0)) / per.length;
      } else ({ mean: value, stderr } = meanStderr(values));
      out.push({ ...base, metric, value, stderr, n: values.length, seconds, requestsPerSecond: requests / Math.max(seconds, 1e-9) });
    }
    options.onTask?.(out.filter((r) => r.task === task.name));
    say(`[eval] ${task.name}: ${out.filter((r) => r.task === task.name).map((r) => `${r.metric} ${r.value.toFixed(4)} ± ${(r.stderr ?? 0).toFixed(4)}`).join(', ')} (n ${data.docs.length}, ${shots}-shot, ${seconds.toFixed(1)} s, ${(requests / Math.max(seconds, 1e-9)).toFixed(1)} requests/s)`);
  }
  return out;
}

/**
 * Perplexity of held-out texts: each text encoded without special tokens, EOS in front (lighteval's rolling
 * log-likelihood), pooled over all tokens. Also word perplexity and bits per byte (spec 3.1).
 */
export function evaluatePerplexity(
  model: EvalModel,
  tok: EvalTokenizer,
  texts: string[],
  options: { modelName?: string; maxLength?: number; batchSize?: number; task?: string } = {},
): EvalResult[] {
  const t0 = Date.now();
  if (texts.length === 0) throw new Error('perplexity: no held-out texts');
  const prefixId = tok.eosTokenId ?? model.config.eos_token_id ?? undefined;
  const docs = texts.map((t, i) => {
    const ids = tok.encode(t, { addSpecialTokens: false });
    if (ids.length === 0) throw new Error(`perplexity: text ${i} encodes to no tokens`);
    return ids;
  });
  const r = perplexity(model, docs, { prefixId: prefixId ?? undefined, maxLength: options.maxLength, batchSize: options.batchSize });
  const words = texts.reduce((a, t) => a + t.split(/\s+/).length, 0); // Python's len(re.split(r"\s+", text))
  const bytes = texts.reduce((a, t) => a + Buffer.byteLength(t, 'utf8'), 0);
  const seconds = (Date.now() - t0) / 1000;
  const base = { task: options.task ?? 'perplexity', stderr: null, n: texts.length, shots: 0, model: options.modelName ?? 'model', backend: backendName(), seconds };
  return [
    { ...base, metric: 'ppl', value: r.ppl },
    { ...base, metric: 'word_perplexity', value: Math.exp(r.nllSum / words) },
    { ...base, metric: 'bits_per_byte', value: r.nllSum / bytes / Math.LN2 },
  ];
}

/** A plain-text table: one row per (task, metric), one value column per model. */
export function formatResultsTable(results: EvalResult[]): string {
  const models = [...new Set(results.map((r) => r.model))];
  const keys = [...new Set(results.map((r) => `${r.task}\u0000${r.metric}`))];
  const header = ['task', 'metric', 'n', 'shots', ...models];
  const rows = keys.map((k) => {
    const [task, metric] = k.split('\u0000');
    const mine = results.filter((r) => r.task === task && r.metric === metric);
    return [task, metric, String(mine[0].n), String(mine[0].shots), ...models.map((m) => {
      const r = mine.find((x) => x.model === m);
      if (!r) return '-';
      return r.stderr === null ? r.value.toFixed(3) : `${r.value.toFixed(4)} ± ${r.stderr.toFixed(4)}`;
    })];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
