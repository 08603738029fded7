/**
 * Progress lines for long data work: documents/s and tokens/s at most every `everyMs`, to stderr so that
 * stdout stays clean for results.
 */
export class Progress {
  private readonly t0 = performance.now();
  private last = this.t0;
  documents = 0;
  tokens = 0;

  constructor(
    private readonly label: string,
    private readonly enabled = true,
    private readonly everyMs = 2000,
    /** What `tokens` counts (e.g. `pieces` while counting words for the tokenizer). */
    private readonly unit = 'tokens',
  ) {}

  get seconds(): number {
    return (performance.now() - this.t0) / 1000;
  }

  add(documents: number, tokens: number): void {
    this.documents += documents;
    this.tokens += tokens;
    const now = performance.now();
    if (this.enabled && now - this.last >= this.everyMs) {
      this.last = now;
      console.error(this.line());
    }
  }

  line(): string {
    const s = Math.max(this.seconds, 1e-9);
    return (
      `${this.label}: ${this.documents} documents (${Math.round(this.documents / s)}/s), ` +
      `${this.tokens} ${this.unit} (${Math.round(this.tokens / s)}/s), ${s.toFixed(1)}s`
    );
  }
}
