import { policyJsonSchema } from '../config/schema.js';
import { EXIT, type Command } from './command.js';

export const schemaCommand: Command = {
  name: 'schema',
  summary: "print the policy's JSON Schema (for editors with the YAML language server)",
  usage: 'consolidator schema',
  description:
    'Prints the JSON Schema of the policy file, generated from the schema the daemon validates with.\n' +
    'Point your editor at it with a "# yaml-language-server: $schema=..." comment for completion.',
  options: {},
  examples: [['consolidator schema > /etc/consolidator/consolidator.schema.json', 'install the schema next to the policy']],
  async run(_args, io) {
    io.stdout.write(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
    return EXIT.OK;
  },
};
