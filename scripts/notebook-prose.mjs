// Numbers in a notebook's prose must come from its outputs. A Markdown cell marks a number (or a range "a-b") it
// takes from an output with an HTML comment right after it, which renders as nothing:
//
//     the held-out loss falls to 1.23<!--out: eval loss--> ...        (the number printed after "eval loss")
//     perplexity 20-40<!--out: perplexity--> ...                     (a range: the printed value must lie in it)
//
// The label is searched in the text outputs of the code cells above the Markdown cell, nearest cell first (within a
// cell, the last line that has it); the first number after the label on that line is the printed value. A single
// number agrees when the printed value, rounded to the prose's decimals, is the same; thousands separators and a
// trailing % are allowed on both sides. Used by tests/notebooks.test.ts (executed notebooks) and
// tests/notebooks-prose.test.ts (the committed outputs).

const NUM = String.raw`-?\d[\d,]*(?:\.\d+)?`;
const MARK = new RegExp(String.raw`(${NUM})\s?%?(?:\s*(?:-|–|to)\s*(${NUM})\s?%?)?\s*<!--\s*out:\s*(.*?)\s*-->`, 'g');
const LOOSE_MARK = /<!--\s*out:/g;

const joined = (s) => (Array.isArray(s) ? s.join('') : (s ?? ''));
const parse = (s) => Number(s.replace(/,/g, ''));
const decimals = (s) => (s.includes('.') ? s.split('.')[1].length : 0);

/** The text a code cell printed (streams and text/plain results). */
export function cellText(cell) {
  return (cell.outputs ?? [])
    .map((o) => (o.output_type === 'stream' ? joined(o.text) : joined(o.data?.['text/plain'])))
    .join('');
}

/** The printed value for `label` in the cells before `index` (nearest first), or undefined. */
export function findPrinted(cells, index, label) {
  for (let i = index - 1; i >= 0; i--) {
    if (cells[i].cell_type !== 'code') continue;
    const lines = cellText(cells[i]).split('\n').reverse();
    for (const line of lines) {
      const at = line.indexOf(label);
      if (at < 0) continue;
      const m = new RegExp(NUM).exec(line.slice(at + label.length));
      if (m) return { cell: i, text: m[0], value: parse(m[0]), line: line.trim() };
    }
  }
  return undefined;
}

/** Every marked number of the notebook that disagrees with its output, as readable messages ([] when all agree). */
export function checkProse(notebook) {
  const problems = [];
  notebook.cells.forEach((cell, index) => {
    if (cell.cell_type !== 'markdown') return;
    const src = joined(cell.source);
    const found = [...src.matchAll(MARK)];
    const loose = [...src.matchAll(LOOSE_MARK)].length;
    if (loose !== found.length) problems.push(`cell ${index}: ${loose - found.length} <!--out: ...--> marker(s) without a number right before them`);
    for (const [, a, b, label] of found) {
      const printed = findPrinted(notebook.cells, index, label);
      if (!printed) {
        problems.push(`cell ${index}: prose says ${a}${b ? `-${b}` : ''} for "${label}", but no output above prints "${label}" followed by a number`);
        continue;
      }
      const ok = b !== undefined
        ? printed.value >= parse(a) && printed.value <= parse(b)
        : printed.value.toFixed(decimals(a)) === parse(a).toFixed(decimals(a));
      if (!ok) problems.push(`cell ${index}: prose says ${a}${b ? `-${b}` : ''} for "${label}", the output of cell ${printed.cell} says ${printed.text} ("${printed.line}")`);
    }
  });
  return problems;
}

/** How many marked numbers a notebook has (a test that checks nothing is no test). */
export function countMarks(notebook) {
  return notebook.cells.filter((c) => c.cell_type === 'markdown').reduce((n, c) => n + [...joined(c.source).matchAll(MARK)].length, 0);
}
