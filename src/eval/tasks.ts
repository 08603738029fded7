/**
 * The seed's benchmark tasks with lighteval v0.7's prompt functions (spec 3.4), their hub layouts (spec 3.5),
 * few-shot contexts and the (context, continuation) texts a log-likelihood request is made of.
 *
 *   arcDoc({ question, choices: { text, label }, answerKey })
 *     -> { query: 'Question: ...\nAnswer:', choices: [' text', ...], gold, instruction: '' }
 *   fewshotContext(doc, shots)          // instruction + "\n\n".join(shot.query + shot.target, ..., doc.query)
 *   splitTrailingSpace(context, choice) // the context's trailing whitespace moves to the continuation
 *
 * A Doc is what lighteval's prompt functions return. Rows come from the hub datasets' own columns; every field a
 * prompt function reads is checked, and a row in the wrong layout is an error naming where it came from
 * (`where`: file and row) and the field.
 */
import { triviaqaGolds } from './generative';

/** One benchmark item, as lighteval's `Doc`. */
export interface TaskDoc {
  query: string;
  choices: string[];
  /** Gold choice index or indices; -1 for an unlabeled (test split) row. */
  gold: number | number[];
  /** Text put once at the top of a few-shot context, and removed from every shot's query (MMLU only). */
  instruction: string;
  /**
   * Chat-format items (the embedded chat benchmark): the user turn, and the start of the assistant's answer
   * sentence the choices complete. The context is then the tokenizer's chat template (see chatContext in run.ts).
   */
  chat?: { user: string; answerPrefix: string };
}

/** Options of a prompt function: `fewshot` builds the row as a shot (MMLU's shots score " A" instead of "A"). */
export interface DocOptions {
  fewshot?: boolean;
}

/** A dataset row: any object (a parsed JSON line, a Parquet row, a generated benchmark row). */
export type TaskRow = object;
type Row = Record<string, unknown>;

// ------------------------------------------------------------------------------------------- field access

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'missing';
  if (Array.isArray(v)) return 'a list';
  return typeof v;
}

function field(row: TaskRow, name: string, where: string): unknown {
  if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new Error(`${where}: expected an object (a row), got ${describe(row)}`);
  const v = (row as Row)[name];
  if (v === undefined) throw new Error(`${where}: field '${name}' is missing (fields: ${Object.keys(row).join(', ')})`);
  return v;
}

function str(row: TaskRow, name: string, where: string): string {
  const v = field(row, name, where);
  if (typeof v !== 'string') throw new Error(`${where}: field '${name}' must be a string, got ${describe(v)}`);
  return v;
}

function toList(v: unknown): unknown[] | null {
  if (Array.isArray(v)) return v;
  // Arrow vectors (apache-arrow) and typed arrays convert with Array.from
  if (v && typeof v === 'object' && typeof (v as { toArray?: unknown }).toArray === 'function') return Array.from((v as { toArray(): ArrayLike<unknown> }).toArray());
  return null;
}

function strList(v: unknown, name: string, where: string): string[] {
  const l = toList(v);
  if (!l || !l.every((x) => typeof x === 'string')) throw new Error(`${where}: field '${name}' must be a list of strings, got ${describe(v)}`);
  return l as string[];
}

/** An integer field that may be stored as a number, a bigint (Parquet INT64) or a numeric string. */
function intOf(v: unknown, name: string, where: string): number {
  const n = typeof v === 'bigint' ? Number(v) : typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new Error(`${where}: field '${name}' must be an integer, got ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)}`);
  return n;
}

function struct(row: TaskRow, name: string, where: string): Row {
  const v = field(row, name, where);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where}: field '${name}' must be a struct, got ${describe(v)}`);
  return v as Row;
}

// -------------------------------------------------------------------------------------- string helpers

/** Python's str.capitalize: first character upper-cased, the rest lower-cased. */
export function pythonCapitalize(s: string): string {
  if (s.length === 0) return s;
  const first = String.fromCodePoint(s.codePointAt(0)!);
  return first.toUpperCase() + s.slice(first.length).toLowerCase();
}

/**
 * lighteval's HellaSwag clean-up: ` [title]` becomes `. `, every `[...]` group goes (non-greedy), then one
 * left-to-right pass turns double spaces into single ones (so three spaces become two).
 */
export function hellaswagPreprocess(text: string): string {
  return text.replaceAll(' [title]', '. ').replace(/\[.*?\]/g, '').replaceAll('  ', ' ');
}

/** Move the context's trailing whitespace to the front of the continuation (lighteval's tok_encode_pair). */
export function splitTrailingSpace(context: string, continuation: string): { context: string; continuation: string } {
  const trimmed = context.replace(/\s+$/u, '');
  const n = context.length - trimmed.length;
  return n > 0 ? { context: trimmed, continuation: context.slice(trimmed.length) + continuation } : { context, continuation };
}

const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J'];

// ----------------------------------------------------------------------------------- prompt functions

/** ARC (allenai/ai2_arc): `Question: {question}\nAnswer:` -> " " + each choice text; gold = answerKey's index in the labels. */
export function arcDoc(row: TaskRow, where = 'ARC row'): TaskDoc {
  const question = str(row, 'question', where);
  const choices = struct(row, 'choices', where);
  const text = strList(choices.text, 'choices.text', where);
  const label = strList(choices.label, 'choices.label', where);
  if (text.length !== label.length) throw new Error(`${where}: 'choices.text' has ${text.length} entries but 'choices.label' has ${label.length}`);
  const key = str(row, 'answerKey', where);
  const gold = label.indexOf(key);
  if (gold < 0) throw new Error(`${where}: answerKey '${key}' is not one of the labels ${JSON.stringify(label)}`);
  return { query: `Question: ${question}\nAnswer:`, choices: text.map((t) => ` ${t}`), gold, instruction: '' };
}

/**
 * The embedded chat benchmark (src/finetune/default-data.ts): ARC's columns plus `answer_prefix`. The question is
 * asked as a user turn and each choice completes the assistant's answer sentence:
 *   <chat template: user question, generation prompt> + "Tom's hat is" -> " blue" | " red" | ...
 * `query` keeps the ARC form for display.
 */
export function embeddedChatDoc(row: TaskRow, where = 'embedded chat benchmark row'): TaskDoc {
  const doc = arcDoc(row, where);
  const answerPrefix = str(row, 'answer_prefix', where);
  return { ...doc, chat: { user: str(row, 'question', where), answerPrefix } };
}

/** PIQA (ybisk/piqa): `Question: {goal}\nAnswer:` -> " " + sol1, " " + sol2; gold = label. */
export function piqaDoc(row: TaskRow, where = 'PIQA row'): TaskDoc {
  const goal = str(row, 'goal', where);
  const sol1 = str(row, 'sol1', where);
  const sol2 = str(row, 'sol2', where);
  const label = intOf(field(row, 'label', where), 'label', where);
  if (label !== -1 && label !== 0 && label !== 1) throw new Error(`${where}: field 'label' must be 0 or 1 (or -1 unlabeled), got ${label}`);
  return { query: `Question: ${goal}\nAnswer:`, choices: [` ${sol1}`, ` ${sol2}`], gold: label, instruction: '' };
}

/** OpenBookQA (allenai/openbookqa): the question stem alone -> " " + each choice; gold = index of answerKey.strip() in ABCDE. */
export function openbookqaDoc(row: TaskRow, where = 'OpenBookQA row'): TaskDoc {
  const stem = str(row, 'question_stem', where);
  const choices = struct(row, 'choices', where);
  const text = strList(choices.text, 'choices.text', where);
  const key = str(row, 'answerKey', where).trim();
  const gold = LETTERS.slice(0, 5).indexOf(key);
  if (gold < 0 || gold >= text.length) throw new Error(`${where}: answerKey '${key}' is not one of ${LETTERS.slice(0, Math.min(5, text.length)).join(', ')}`);
  return { query: stem, choices: text.map((t) => ` ${t}`), gold, instruction: '' };
}

/**
 * HellaSwag (Rowan/hellaswag, lighteval's harness prompt): clean(`{activity_label}: {ctx_a} {ctx_b.capitalize()} `)
 * -> clean(ending) with no leading space (the query's trailing space moves to the continuation); gold = int(label),
 * -1 for the empty label of test rows.
 */
export function hellaswagDoc(row: TaskRow, where = 'HellaSwag row'): TaskDoc {
  const activity = str(row, 'activity_label', where);
  const ctxA = str(row, 'ctx_a', where);
  const ctxB = str(row, 'ctx_b', where);
  const endings = strList(field(row, 'endings', where), 'endings', where);
  const labelRaw = field(row, 'label', where);
  const gold = labelRaw === '' || labelRaw === null ? -1 : intOf(labelRaw, 'label', where);
  if (gold >= endings.length) throw new Error(`${where}: label ${gold} but only ${endings.length} endings`);
  return {
    query: hellaswagPreprocess(`${activity}: ${ctxA} ${pythonCapitalize(ctxB)} `),
    choices: endings.map(hellaswagPreprocess),
    gold,
    instruction: '',
  };
}

/** Winogrande (allenai/winogrande): the sentence up to `_` -> "{option} {rest.strip()}" for both options; gold = int(answer) - 1. */
export function winograndeDoc(row: TaskRow, where = 'Winogrande row'): TaskDoc {
  const sentence = str(row, 'sentence', where);
  const parts = sentence.split('_');
  if (parts.length !== 2) throw new Error(`${where}: field 'sentence' must contain exactly one '_', found ${parts.length - 1}`);
  const o1 = str(row, 'option1', where);
  const o2 = str(row, 'option2', where);
  const answer = field(row, 'answer', where);
  const gold = answer === '' || answer === null ? -1 : intOf(answer, 'answer', where) - 1;
  if (gold !== -1 && gold !== 0 && gold !== 1) throw new Error(`${where}: field 'answer' must be "1" or "2", got ${JSON.stringify(answer)}`);
  const rest = parts[1].trim();
  return { query: parts[0], choices: [`${o1} ${rest}`, `${o2} ${rest}`], gold, instruction: '' };
}

/**
 * MMLU "original" (cais/mmlu): instruction `The following are multiple choice questions (with answers) about
 * {subject with spaces}.\n\n` (two spaces before the subject), the question, lettered choices, `Answer:`; the
 * choices are the letters, without a space for the evaluated question and with one for shots.
 */
export function mmluOriginalDoc(row: TaskRow, subject?: string, where = 'MMLU row', options: DocOptions = {}): TaskDoc {
  const topic = subject ?? str(row, 'subject', where);
  const question = str(row, 'question', where);
  const choices = strList(field(row, 'choices', where), 'choices', where);
  if (choices.length > LETTERS.length) throw new Error(`${where}: ${choices.length} choices, at most ${LETTERS.length} supported`);
  const answer = field(row, 'answer', where);
  const gold = typeof answer === 'string' && LETTERS.includes(answer.trim()) ? LETTERS.indexOf(answer.trim()) : intOf(answer, 'answer', where);
  if (gold < 0 || gold >= choices.length) throw new Error(`${where}: answer ${JSON.stringify(typeof answer === 'bigint' ? Number(answer) : answer)} is not one of the ${choices.length} choices`);
  const instruction = `The following are multiple choice questions (with answers) about  ${topic.replaceAll('_', ' ')}.\n\n`;
  const letters = LETTERS.slice(0, 4);
  const query = `${instruction}${question}\n${choices.map((c, i) => `${LETTERS[i]}. ${c}\n`).join('')}Answer:`;
  return { query, choices: options.fewshot ? letters.map((l) => ` ${l}`) : letters, gold, instruction };
}

/** TriviaQA (mandarjoshi/trivia_qa rc.nocontext): `Question: {question}\nAnswer:`; the choices are the processed aliases, gold 0. */
export function triviaqaDoc(row: TaskRow, where = 'TriviaQA row'): TaskDoc {
  const question = str(row, 'question', where);
  const answer = struct(row, 'answer', where);
  const aliases = strList(answer.aliases, 'answer.aliases', where);
  if (aliases.length === 0) throw new Error(`${where}: field 'answer.aliases' is empty`);
  return { query: `Question: ${question}\nAnswer:`, choices: triviaqaGolds(aliases), gold: 0, instruction: '' };
}

// ------------------------------------------------------------------------------------------ few-shot

/** The first gold choice: what a shot's answer is (TriviaQA: the first processed alias, right after `Answer:`). */
export function docTarget(doc: TaskDoc): string {
  const g = Array.isArray(doc.gold) ? doc.gold[0] : doc.gold;
  if (g === undefined || g < 0 || g >= doc.choices.length) throw new Error(`few-shot example '${doc.query.slice(0, 60)}' has no gold answer (an unlabeled row cannot be a shot)`);
  return doc.choices[g];
}

function withoutInstruction(doc: TaskDoc): string {
  return doc.instruction && doc.query.startsWith(doc.instruction) ? doc.query.slice(doc.instruction.length) : doc.query;
}

/** lighteval's plain few-shot context: instruction + "\n\n".join(shot query + target, ..., query). */
export function fewshotContext(doc: TaskDoc, shots: TaskDoc[] = []): string {
  const parts = shots.map((s) => withoutInstruction(s) + docTarget(s));
  parts.push(withoutInstruction(doc));
  return doc.instruction + parts.join('\n\n');
}

/** The (context, continuation) texts of a question's log-likelihood requests, after the trailing-space move. */
export function requestTexts(doc: TaskDoc, context: string): { context: string; continuation: string }[] {
  return doc.choices.map((c) => splitTrailingSpace(context, c));
}
