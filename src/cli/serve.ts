/**
 * `wm serve --model DIR [--model DIR2 ...] [--port 8000]`: an OpenAI-compatible HTTP server with a chat page.
 *
 * Existing clients work unchanged (the `openai` package: baseURL http://127.0.0.1:8000/v1). Binds to 127.0.0.1
 * unless --host says otherwise; SIGINT / SIGTERM let running requests finish (up to --shutdown-grace seconds),
 * cancel the rest and exit. A model folder without a chat template answers /v1/completions only.
 */
import { loadBackend } from '../runtime/backend';
import type { RouterLayout } from '../modules/cdmoe';
import { TalkModel } from '../serve/talk-model';
import { startServer } from '../serve/server';
import { defineCommand, num, parseCommandArgs, str, strs, UsageError } from './args';

export const USAGE = `usage: wm serve --model DIR [--model DIR2 ...] [options]

  --model DIR            a model folder or a run folder (its final/); repeat to serve several. The API's model name
                         is the folder's name (the run's name for runs/x/final)
  --host HOST            address to bind (default 127.0.0.1: this machine only; 0.0.0.0 = every interface)
  --port N               port (default 8000; 0 = any free port)
  --api-key KEY          require 'Authorization: Bearer KEY' on /v1/* (default: none; also WM_API_KEY)
  --max-tokens-cap N     largest max_tokens a request may ask for (default 1024)
  --max-body-bytes N     largest request body (default 1048576)
  --max-queue N          requests per model waiting or running before 429 (default 16)
  --shutdown-grace S     seconds running requests get to finish on SIGTERM / Ctrl-C (default 10)
  --router-layout L      CDMoE router layout: token (default) or hf

Endpoints: GET / (chat page), GET /v1/models, POST /v1/chat/completions, POST /v1/completions (stream: true for
server-sent events). Absent sampling fields take the model folder's generation_config.json; temperature 0 = greedy.
Prompts longer than the model's context are refused (400 context_length_exceeded); replies end at the context.`;

export const SERVE_SPEC = defineCommand({
  name: 'wm serve',
  usage: USAGE,
  options: {
    model: { type: 'string', multiple: true },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'int', min: 0, max: 65535, default: 8000 },
    'api-key': { type: 'string' },
    'max-tokens-cap': { type: 'int', min: 1, default: 1024 },
    'max-body-bytes': { type: 'int', min: 1024, default: 1 << 20 },
    'max-queue': { type: 'int', min: 1, default: 16 },
    'shutdown-grace': { type: 'number', min: 0, default: 10 },
    'router-layout': { type: 'string', choices: ['token', 'hf'] },
  },
});

export async function run(argv: string[]): Promise<void> {
  const args = parseCommandArgs(SERVE_SPEC, argv);
  if (args.help) { console.log(USAGE); return; }
  const dirs = strs(args, 'model');
  if (dirs.length === 0) throw new UsageError(`wm serve: give at least one --model DIR\n\n${USAGE}`);
  await loadBackend({ workload: 'inference', log: false });
  const models: TalkModel[] = [];
  const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  try {
    for (const d of dirs) {
      const m = await TalkModel.load(d, { routerLayout: (str(args, 'router-layout') as RouterLayout | undefined) ?? 'token' });
      models.push(m);
      log(`${m.id}: ${m.dir}, context ${m.contextLength} tokens${m.hasChatTemplate ? '' : '; no chat template: answers /v1/completions only'}`);
    }
    const srv = await startServer(models, {
      host: str(args, 'host'), port: num(args, 'port'), apiKey: str(args, 'api-key') ?? process.env.WM_API_KEY,
      maxTokensCap: num(args, 'max-tokens-cap'), maxBodyBytes: num(args, 'max-body-bytes'), maxQueue: num(args, 'max-queue'), log,
    });
    log(`serving ${models.map((m) => m.id).join(', ')} at ${srv.url}/v1 (chat page: ${srv.url}/)`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        log(`${signal}: finishing running requests (up to ${num(args, 'shutdown-grace')} s), then exiting`);
        srv.close((num(args, 'shutdown-grace') ?? 10) * 1000).then(resolve, resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    log('stopped');
  } finally {
    for (const m of models) m.dispose();
  }
}
