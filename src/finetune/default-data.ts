/**
 * The embedded offline fine-tuning data (spec section 4): no instruction, preference or benchmark data exists in
 * the package registries, so it is generated from templates, seeded, as plain text (any tokenizer's chat template
 * renders it). Vocabulary and glosses come from WordNet, the rambling sentences from the Brown corpus (both via
 * the derived file wordnet-mini.ts; WordNet's license is in its header).
 *
 * Families (user -> assistant):
 *   copy     "Ann has a cup. Tom has a blue hat. What colour is Tom's hat?" -> "Tom's hat is blue."
 *            (only the asked fact carries a colour: copy the one colour word of the context)
 *   bind     the same with a colour in every fact: associative recall with distractors (the MQAR skill)
 *   arith    "What is 3 plus 4?" -> "3 plus 4 is 7."  (single digits: a 100-fact table)
 *   antonym  "What is the opposite of hot?" -> "The opposite of hot is cold."  (WordNet antonym pairs)
 *   define   "What does horse mean?" -> "Horse means: solid-hoofed herbivorous quadruped ..."  (WordNet gloss)
 *
 *   defaultChats({ seed, n })        SFT conversations (10 % with a system turn, 10 % with two rounds)
 *   defaultPreferences({ seed, n })  DPO pairs { prompt, chosen, rejected } as message lists: chosen = correct,
 *                                    rejected = a hard negative (the same sentence around a plausible wrong
 *                                    word: unmentioned / other fact's colour, off by one or two, the word itself
 *                                    / another opposite) or, 10 %, the right answer followed by rambling
 *   defaultBenchmark({ seed, n })    four-choice questions in ARC's layout (copy, bind, arith, antonym)
 * Different seeds give different items; held-out splits use another seed stream (`split: 'test'`).
 */
import type { ChatMessage } from '../data/tokenizer';
import { dataRng } from '../ops/random';
import { WORDNET_MINI } from './wordnet-mini';

export type DefaultFamily = 'copy' | 'bind' | 'arith' | 'antonym' | 'define';
export const DEFAULT_FAMILIES: readonly DefaultFamily[] = ['copy', 'bind', 'arith', 'antonym', 'define'];

/**
 * The SFT mix: 70 % copy, 10 % bind, 10 % arith, 5 % antonym, 5 % define. Spec 4.2 proposed 40/20/20/10/10; measured
 * on doge-tiny, that spread over 120 steps taught the chat format and stopping but no family's content (benchmark at
 * chance), while copy-heavy chats teach the in-context look-up within a few CPU minutes (the embedded benchmark).
 */
export const DEFAULT_CHAT_MIX: Record<DefaultFamily, number> = { copy: 0.7, bind: 0.1, arith: 0.1, antonym: 0.05, define: 0.05 };

/**
 * The DPO mix: copy-heavy like the chats. Measured on doge-tiny (docs/finetune-defaults.md): DPO's hard negatives
 * perfect the in-context look-up (copy), while bind-heavy mixes (40 %, 60 %) moved neither bind nor the benchmark.
 */
export const DEFAULT_PREFERENCE_MIX: Partial<Record<DefaultFamily, number>> = { copy: 0.7, bind: 0.1, arith: 0.1, antonym: 0.1 };

/** The embedded benchmark's default families: the in-context ones, which the default SFT teaches. */
export const DEFAULT_BENCHMARK_FAMILIES: readonly DefaultFamily[] = ['copy', 'bind'];

export interface DefaultDataOptions {
  seed?: number;
  n?: number;
  /** 'train' and 'test' draw from different random streams (default 'train'). */
  split?: 'train' | 'test';
  /** Family weights (default DEFAULT_CHAT_MIX; the benchmark uses copy/bind/arith/antonym equally). */
  mix?: Partial<Record<DefaultFamily, number>>;
}

/** A generated chat with the family it came from. */
export interface DefaultChat {
  family: DefaultFamily;
  messages: ChatMessage[];
}

/** A preference pair, conversational (TRL's layout): prompt turns, then the chosen / rejected assistant turn. */
export interface DefaultPreference {
  family: DefaultFamily;
  /** Which kind of wrong answer `rejected` is. */
  rejectedKind: 'wrong_colour' | 'context_colour' | 'off_by_one' | 'same_word' | 'other_antonym' | 'wrong_gloss' | 'rambling';
  prompt: ChatMessage[];
  chosen: ChatMessage[];
  rejected: ChatMessage[];
}

/** A four-choice question in the layout of `allenai/ai2_arc`. */
export interface DefaultBenchmarkRow {
  id: string;
  question: string;
  choices: { text: string[]; label: string[] };
  answerKey: string;
  /** The assistant's answer sentence up to the answer word ("Tom's hat is"): the embedded_chat task's cloze. */
  answer_prefix: string;
}

const NAMES = ['Ann', 'Tom', 'Mary', 'John', 'Sue', 'Bob', 'Kate', 'Paul', 'Jane', 'Mark', 'Lucy', 'Jack'];
const COLOURS = ['red', 'blue', 'green', 'white', 'black', 'brown', 'yellow', 'gray'];
const SYSTEM_PROMPTS = ['You are a helpful assistant.', 'Answer in one short sentence.', 'You answer questions about the text.'];

/** Things people "have" in copy/bind facts: the most frequent WordNet artifact and animal nouns of Brown. */
function things(): string[] {
  return [...WORDNET_MINI.artifacts.slice(0, 40), ...WORDNET_MINI.animals];
}

/** One antonym per word (the first, most Brown-frequent pair wins), both directions. */
function antonymPairs(): [string, string][] {
  const used = new Set<string>();
  const out: [string, string][] = [];
  for (const [a, b] of WORDNET_MINI.antonyms) {
    if (used.has(a) || used.has(b)) continue;
    used.add(a);
    used.add(b);
    out.push([a, b], [b, a]);
  }
  return out;
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
function sample<T>(r: Rand, xs: readonly T[], k: number): T[] {
  const pool = [...xs];
  const out: T[] = [];
  for (let i = 0; i < k && pool.length; i++) out.push(pool.splice(Math.floor(r() * pool.length), 1)[0]!);
  return out;
}
const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** A question with its correct answer sentence, a short answer word, and the material for wrong answers. */
interface Item {
  family: DefaultFamily;
  question: string;
  answer: string;
  /** The word the answer turns on (the MC gold) and same-kind alternatives (MC distractors, wrong answers). */
  gold: string;
  wrong: string[];
  /** Turns the answer sentence around a different word. */
  answerWith: (word: string) => string;
}

function copyOrBind(r: Rand, bind: boolean): Item {
  const n = 2 + Math.floor(r() * 3); // 2-4 facts
  const people = sample(r, NAMES, n);
  const objs = sample(r, things(), n);
  const cols = sample(r, COLOURS, n);
  const ask = Math.floor(r() * n);
  const facts = people.map((p, i) => (bind || i === ask ? `${p} has a ${cols[i]} ${objs[i]}.` : `${p} has a ${objs[i]}.`));
  const who = people[ask]!;
  const obj = objs[ask]!;
  const gold = cols[ask]!;
  // distractors: the other colours of the context first (bind), then colours not mentioned
  const inContext = bind ? cols.filter((_, i) => i !== ask) : [];
  const others = sample(r, COLOURS.filter((c) => c !== gold && !inContext.includes(c)), 3);
  return {
    family: bind ? 'bind' : 'copy',
    question: `${facts.join(' ')} What colour is ${who}'s ${obj}?`,
    answer: `${who}'s ${obj} is ${gold}.`,
    gold,
    wrong: [...inContext, ...others],
    answerWith: (w) => `${who}'s ${obj} is ${w}.`,
  };
}

function arith(r: Rand): Item {
  const a = Math.floor(r() * 10);
  const b = Math.floor(r() * 10);
  const s = a + b;
  const near = [s + 1, s - 1, s + 2, s - 2, s + 10].filter((x) => x >= 0).map(String);
  return {
    family: 'arith',
    question: `What is ${a} plus ${b}?`,
    answer: `${a} plus ${b} is ${s}.`,
    gold: String(s),
    wrong: near,
    answerWith: (w) => `${a} plus ${b} is ${w}.`,
  };
}

function antonym(r: Rand): Item {
  const pairs = antonymPairs();
  const [w, opp] = pick(r, pairs);
  const others = sample(r, pairs.map((p) => p[1]).filter((x) => x !== opp && x !== w), 3);
  return {
    family: 'antonym',
    question: `What is the opposite of ${w}?`,
    answer: `The opposite of ${w} is ${opp}.`,
    gold: opp,
    wrong: [w, ...others],
    answerWith: (x) => `The opposite of ${w} is ${x}.`,
  };
}

function define(r: Rand): Item {
  const words = Object.keys(WORDNET_MINI.glosses);
  const w = pick(r, words);
  const gloss = WORDNET_MINI.glosses[w]!;
  const other = pick(r, words.filter((x) => x !== w));
  return {
    family: 'define',
    question: `What does ${w} mean?`,
    answer: `${capitalise(w)} means: ${gloss}.`,
    gold: gloss,
    wrong: [WORDNET_MINI.glosses[other]!],
    answerWith: (g) => `${capitalise(w)} means: ${g}.`,
  };
}

function makeItem(r: Rand, family: DefaultFamily): Item {
  switch (family) {
    case 'copy': return copyOrBind(r, false);
    case 'bind': return copyOrBind(r, true);
    case 'arith': return arith(r);
    case 'antonym': return antonym(r);
    case 'define': return define(r);
  }
}

/** Families in proportion to the weights, interleaved in a seeded order (exact counts, largest remainder). */
function familySchedule(r: Rand, n: number, mix: Partial<Record<DefaultFamily, number>>): DefaultFamily[] {
  const fams = DEFAULT_FAMILIES.filter((f) => (mix[f] ?? 0) > 0);
  if (!fams.length) throw new Error('default data: the family mix has no positive weight');
  const total = fams.reduce((s, f) => s + mix[f]!, 0);
  const counts = fams.map((f) => Math.floor((n * mix[f]!) / total));
  let left = n - counts.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % fams.length, left--) counts[i]! += 1;
  const out: DefaultFamily[] = [];
  fams.forEach((f, i) => { for (let k = 0; k < counts[i]!; k++) out.push(f); });
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function checkOptions(o: DefaultDataOptions, what: string, defaultN: number): { seed: number; n: number; stream: number } {
  const seed = o.seed ?? 0;
  const n = o.n ?? defaultN;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(seed)) throw new Error(`${what}: seed must be an integer, got ${seed}`);
  const split = o.split ?? 'train';
  if (split !== 'train' && split !== 'test') throw new Error(`${what}: split must be 'train' or 'test', got '${split}'`);
  return { seed, n, stream: split === 'train' ? 0 : 1 };
}

/** SFT conversations (default 4,000, the spec's `wm-chat-mini`). */
export function defaultChats(options: DefaultDataOptions = {}): DefaultChat[] {
  const { seed, n, stream } = checkOptions(options, 'defaultChats', 4000);
  const r = dataRng(seed, 100 + stream);
  const fams = familySchedule(r, n, options.mix ?? DEFAULT_CHAT_MIX);
  return fams.map((family) => {
    const messages: ChatMessage[] = [];
    if (r() < 0.1) messages.push({ role: 'system', content: pick(r, SYSTEM_PROMPTS) });
    const rounds = r() < 0.1 ? 2 : 1;
    for (let k = 0; k < rounds; k++) {
      // the second round is an arithmetic question (short), so two-round chats stay short
      const it = makeItem(r, k === 0 ? family : 'arith');
      messages.push({ role: 'user', content: it.question }, { role: 'assistant', content: it.answer });
    }
    return { family, messages };
  });
}

/**
 * Share of preference pairs whose rejected answer is the right one followed by rambling (no stop). The rest are hard
 * negatives: the same answer sentence around a plausible wrong word. Spec 4.2's 40 % rambling taught nothing the
 * SFT model lacked (it already stops every time) and diluted the hard pairs: DPO moved the benchmark 0.4 SE.
 */
export const DEFAULT_RAMBLING_SHARE = 0.1;

/**
 * The wrong word of a hard negative, of the kinds a model that half-knows the task picks (the kinds the four-choice
 * questions offer): copy - a colour the context does not mention; bind - another fact's colour of the context (3 in
 * 4) or an unmentioned one; arith - the three nearest wrong sums (off by one or two; 10 more for 0 and 1);
 * antonym - the word itself (half) or another word's opposite.
 */
function hardNegative(r: Rand, it: Item): { word: string; kind: DefaultPreference['rejectedKind'] } {
  const wrong = it.wrong.filter((w) => w !== it.gold);
  switch (it.family) {
    case 'copy': return { word: pick(r, wrong), kind: 'wrong_colour' };
    case 'bind': {
      const inContext = wrong.filter((w) => it.question.includes(` ${w} `));
      if (inContext.length && r() < 0.75) return { word: pick(r, inContext), kind: 'context_colour' };
      const others = wrong.filter((w) => !inContext.includes(w));
      return { word: pick(r, others), kind: 'wrong_colour' };
    }
    case 'arith': return { word: pick(r, wrong.slice(0, 3)), kind: 'off_by_one' };
    case 'antonym':
      if (r() < 0.5) return { word: wrong[0]!, kind: 'same_word' };
      return { word: pick(r, wrong.slice(1)), kind: 'other_antonym' };
    case 'define': return { word: wrong[0]!, kind: 'wrong_gloss' };
  }
}

/**
 * Preference pairs over the same kinds of prompts (default 1,000, the spec's `wm-prefs-mini`): chosen is the right
 * answer; rejected is a hard negative (`hardNegative`: the same sentence, only the answer word differs) or, for a
 * share `ramblingShare` (default DEFAULT_RAMBLING_SHARE), the right answer followed by rambling Brown sentences.
 * Their own random stream (not the benchmark's): tests check no in-context benchmark question is a pair's prompt.
 */
export function defaultPreferences(options: DefaultDataOptions & { ramblingShare?: number } = {}): DefaultPreference[] {
  const { seed, n, stream } = checkOptions(options, 'defaultPreferences', 1000);
  const rambling = options.ramblingShare ?? DEFAULT_RAMBLING_SHARE;
  if (!(rambling >= 0 && rambling <= 1)) throw new Error(`defaultPreferences: ramblingShare must be in [0, 1], got ${rambling}`);
  const r = dataRng(seed, 200 + stream);
  const fams = familySchedule(r, n, options.mix ?? DEFAULT_PREFERENCE_MIX);
  return fams.map((family) => {
    const it = makeItem(r, family);
    let rejected: string;
    let kind: DefaultPreference['rejectedKind'];
    if (r() < rambling) {
      // the right answer, then no stop: repeated and followed by Brown sentences
      const s = sample(r, WORDNET_MINI.sentences, 2);
      rejected = `${it.answer} ${it.answer} ${s.join(' ')}`;
      kind = 'rambling';
    } else {
      const neg = hardNegative(r, it);
      rejected = it.answerWith(neg.word);
      kind = neg.kind;
    }
    return {
      family,
      rejectedKind: kind,
      prompt: [{ role: 'user', content: it.question }],
      chosen: [{ role: 'assistant', content: it.answer }],
      rejected: [{ role: 'assistant', content: rejected }],
    };
  });
}

const LABELS = ['A', 'B', 'C', 'D'];

/** The answer sentence before the answer word: "Tom's hat is blue." -> "Tom's hat is". */
function answerPrefix(it: Item): string {
  const marked = it.answerWith('\u0000');
  const at = marked.indexOf('\u0000');
  if (at < 1 || marked.slice(at + 1) !== '.') throw new Error(`default data: the ${it.family} answer '${marked}' does not end with the answer word`);
  return marked.slice(0, at).trimEnd();
}

/**
 * The embedded benchmark (spec's `wm-mc-mini`): four-choice questions, equal shares of the families (default 400
 * of copy and bind, the in-context look-ups the default SFT teaches; arith and antonym, closed-book facts the chats
 * also contain, on request), in ARC's layout plus `answer_prefix`. Task `embedded` scores them with lighteval's ARC
 * prompt (`Question: ...\nAnswer:` with `" " + text` choices), task `embedded_chat` through the chat template with
 * each choice completing the answer sentence ("Tom's hat is" + " blue"), the format the chats teach.
 * For bind the context's other colours are distractors: chance 25 %, "a colour of the context" 1 / (facts), true
 * binding 100 %. Uses its own random stream: its questions are new combinations, not the training chats.
 */
export function defaultBenchmark(options: { seed?: number; n?: number; families?: DefaultFamily[] } = {}): DefaultBenchmarkRow[] {
  const { seed, n } = checkOptions({ seed: options.seed, n: options.n }, 'defaultBenchmark', 400);
  const families = options.families ?? [...DEFAULT_BENCHMARK_FAMILIES];
  for (const f of families) if (!DEFAULT_FAMILIES.includes(f) || f === 'define') throw new Error(`defaultBenchmark: family '${f}' has no four-choice form (use copy, bind, arith, antonym)`);
  const r = dataRng(seed, 300);
  const mix: Partial<Record<DefaultFamily, number>> = {};
  for (const f of families) mix[f] = 1;
  const fams = familySchedule(r, n, mix);
  return fams.map((family, i) => {
    const it = makeItem(r, family);
    const wrong = [...new Set(it.wrong.filter((w) => w !== it.gold))].slice(0, 3);
    const goldAt = Math.floor(r() * 4);
    const text = [...wrong];
    text.splice(goldAt, 0, it.gold);
    return {
      id: `wm-mc-${family}-${i}`,
      question: it.question,
      choices: { text, label: [...LABELS] },
      answerKey: LABELS[goldAt]!,
      answer_prefix: answerPrefix(it),
    };
  });
}
