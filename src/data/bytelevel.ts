/**
 * The byte-level alphabet of GPT-2 / Hugging Face `ByteLevel`: every byte 0..255 is shown as one printable
 * Unicode character (printable ASCII and Latin-1 map to themselves, the rest to U+0100 and up, so the space
 * 0x20 becomes `Ġ` and the newline 0x0A becomes `Ċ`). A byte-level BPE works on these characters, which is
 * why it can encode any Unicode text exactly.
 */

/** The byte -> character table of `bytes_to_unicode()`. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b); // ! .. ~
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b); // ¡ .. ¬
  for (let b = 0xae; b <= 0xff; b++) printable.push(b); // ® .. ÿ
  const table = new Array<string>(256);
  const keep = new Set(printable);
  let next = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = keep.has(b) ? String.fromCharCode(b) : String.fromCharCode(256 + next++);
  }
  return table;
})();

/**
 * The GPT-2 pre-tokenisation pattern (`ByteLevel` with `use_regex: true`): contractions, words with an
 * optional leading space, numbers, punctuation runs, and whitespace (a run of spaces keeps its last space
 * for the next word).
 */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const encoder = new TextEncoder();

/** UTF-8 bytes of a piece, as byte-level characters (`" the"` -> `"Ġthe"`). */
export function toByteLevel(piece: string): string {
  let out = '';
  for (const b of encoder.encode(piece)) out += BYTE_TO_CHAR[b];
  return out;
}
