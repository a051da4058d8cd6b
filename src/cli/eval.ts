/**
 * `facegate eval --model DIR --data DIR [--unknown DIR] [--crops] [--json] [--report OUT]`:
 * how often the model names the right person, refuses strangers, and fails.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { precisionChoices, type PrecisionChoice } from '../model/manifest.js';

interface EvalCliOptions {
  model: string;
  data?: string;
  unknown?: string;
  crops: boolean;
  json: boolean;
  report?: string;
  precision: PrecisionChoice;
  threads?: number;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a positive integer, got "${v}"`);
  return n;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'Measure recognition on labelled photos: accuracy, false accepts of strangers, false rejects, misidentifications',
    )
    .requiredOption('--model <dir>', 'model directory (from facegate train)')
    .option('--data <dir>', 'DIR/<person>/images; folders that are not classes of the model count as strangers')
    .option('--unknown <dir>', 'images of people the model must refuse (searched recursively)')
    .option('--crops', 'the images are face crops already: skip detection', false)
    .option('--json', 'print one JSON object', false)
    .option(
      '--report <dir>',
      'write report.json and PNG charts (confusion matrix, per-person precision/recall, FAR/FRR curve)',
    )
    .addOption(
      new Option(
        '--precision <p>',
        'which model file to run (auto: int8 when its recorded check agreed with fp32 on ≥ 99 %, else fp32)',
      )
        .choices(precisionChoices)
        .default('auto'),
    )
    .option('--threads <n>', 'onnxruntime threads', positiveInt)
    .action(async (o: EvalCliOptions) => {
      const { evaluate, resultJson } = await import('../recognise/evaluate.js');
      const r = await evaluate({
        modelDir: o.model,
        data: o.data,
        unknown: o.unknown,
        crops: o.crops,
        precision: o.precision,
        threads: o.threads,
        onProgress:
          o.json || !process.stderr.isTTY
            ? undefined
            : (d, t) => {
                process.stderr.write(`\revaluating ${d}/${t}`);
                if (d === t) process.stderr.write('\n');
              },
      });
      let written: string[] = [];
      if (o.report) {
        const { writeReport } = await import('../recognise/report.js');
        written = await writeReport(r, o.report);
      }
      if (o.json) {
        process.stdout.write(JSON.stringify({ ...resultJson(r), ...(o.report ? { report: written } : {}) }) + '\n');
        return;
      }
      const lines = [
        `model ${r.model} (version ${r.modelVersion}, ${r.precision}), ${r.mode === 'crops' ? 'face crops' : 'photos, faces detected'}`,
        `${r.knownImages} images of known people, ${r.unknownImages} of strangers` +
          (r.strangerFolders.length ? ` (folders not in the model: ${r.strangerFolders.join(', ')})` : ''),
        `faces not found: ${r.facesNotFound}${r.unreadable ? `, unreadable: ${r.unreadable}` : ''}`,
        `threshold ${r.threshold.toFixed(4)} (cosine), min margin ${r.minMargin}`,
        `accuracy (known named correctly): ${pct(r.rates.accuracy)}`,
        `far (strangers named):            ${r.unknownImages ? pct(r.rates.far) : 'n/a (no strangers)'}`,
        `frr (known refused or misnamed):  ${pct(r.rates.frr)}${r.facesNotFoundKnown ? ` (${pct(r.frrIncludingNotFound)} counting faces not found)` : ''}`,
        `misidentified (another's name):   ${pct(r.rates.misidentified)}`,
        ...(r.eer
          ? [`equal error rate: ~${pct((r.eer.far + r.eer.frr) / 2)} at threshold ${r.eer.threshold.toFixed(4)}`]
          : []),
        ...(written.length ? [`report: ${written.join(', ')}`] : []),
        ...r.warnings.map((w) => `warning: ${w}`),
      ];
      process.stdout.write(lines.join('\n') + '\n');
    });
}
