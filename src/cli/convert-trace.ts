import { isConsolidatorError } from '../errors.js';
import { loadWorkload } from '../sim/workload/load-workload.js';
import { writeTraceFile } from '../sim/workload/trace-file.js';
import { EXIT, requirePositional, type Command } from './command.js';

export const convertTraceCommand: Command = {
  name: 'convert-trace',
  summary: 'convert a PlanetLab or Bitbrains folder to a consolidator trace file',
  usage: 'consolidator convert-trace WORKLOAD OUT_FILE',
  description:
    'Reads a workload (a PlanetLab or Bitbrains folder, or a trace file) and writes it as a consolidator\n' +
    'trace file (gzip\'d when OUT_FILE ends in .gz): one line per VM with its vCPUs, memory, first sample\n' +
    'and CPU and memory percents; the format is described in the README ("Simulation and benchmarks").\n' +
    '`consolidator simulate OUT_FILE` replays it exactly as it replays the folder.\n' +
    '\n' +
    'Exit status: 0 done; 64 usage error; 65 bad workload data (the message names the file and line).',
  options: {},
  examples: [['consolidator convert-trace bench/data/bitbrains/pl_2013-8_1d bitbrains-1d.csv.gz', 'the shared Bitbrains day as one file']],
  async run(args, io) {
    const input = requirePositional(this, args, 0, 'WORKLOAD (a folder of traces or a trace file)');
    const output = requirePositional(this, args, 1, 'OUT_FILE (the trace file to write)');
    try {
      const workload = await loadWorkload(input);
      await writeTraceFile(output, workload, { source: `${workload.format} ${input}` });
      io.stdout.write(`${output}: ${workload.vms.length} VMs, ${workload.samples} samples of ${workload.sampleSeconds} s\n`);
      return EXIT.OK;
    } catch (e) {
      if (isConsolidatorError(e, 'WORKLOAD_INVALID')) {
        io.stderr.write(`consolidator: ${e.message}\n`);
        return EXIT.DATA;
      }
      throw e;
    }
  },
};
