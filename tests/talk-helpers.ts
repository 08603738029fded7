// Tiny random-init chat models in a temp folder (a ChatML byte-level BPE tokenizer from trainTokenizer): fast
// model folders for the wm chat / wm serve tests.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { trainTokenizer } from '../src/data';
import { DogeConfig, DogeForCausalLM } from '../src/models/doge';
import { CheemsConfig, CheemsForCausalLM } from '../src/models/cheems';

export interface TinyModels {
  root: string;
  doge: string;
  cheems: string;
  /** A Doge folder whose tokenizer_config.json has no chat_template. */
  plain: string;
}

/** Save tiny Doge and Cheems models (context `ctx`) with one tokenizer; returns their folders. */
export async function tinyChatModels(prefix: string, ctx = 96): Promise<TinyModels> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const tokDir = path.join(root, 'tok');
  await trainTokenizer({ texts: ['hello there, how are you today? I am fine, thank you. '.repeat(30)], vocabSize: 300, outDir: tokDir, log: false });
  const vocab = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> }; added_tokens: { id: number }[] };
  const V = Math.max(...Object.values(vocab.model.vocab), ...vocab.added_tokens.map((t) => t.id)) + 1;
  const copyTok = (dir: string) => { for (const f of fs.readdirSync(tokDir)) fs.copyFileSync(path.join(tokDir, f), path.join(dir, f)); };
  const doge = new DogeForCausalLM(new DogeConfig({ vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: ctx }), { seed: 7 });
  const out = { root, doge: path.join(root, 'doge'), cheems: path.join(root, 'cheems'), plain: path.join(root, 'plain') };
  doge.savePretrained(out.doge);
  doge.savePretrained(out.plain);
  doge.dispose();
  copyTok(out.doge);
  copyTok(out.plain);
  const cfgFile = path.join(out.plain, 'tokenizer_config.json');
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  delete cfg.chat_template;
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  const cheems = new CheemsForCausalLM(CheemsConfig.preset('cheems-tiny', { vocab_size: V, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, attn_layer_period: 2, attn_layer_offset: 1, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: ctx }), { seed: 7 });
  cheems.savePretrained(out.cheems);
  cheems.dispose();
  copyTok(out.cheems);
  return out;
}
