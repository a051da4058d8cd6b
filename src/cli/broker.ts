import type { Command } from 'commander';
import type { OperatorBroker, OperatorBrokerFlags } from '../publish/operator.js';

/**
 * The broker flags of every operator command that talks to kiosks over MQTT (publish-model,
 * enrol publish-bundle): the same names and meaning everywhere. `--config FILE` reads the
 * kiosks' own `mqtt` section (url, baseTopic, username, passwordFile, tls); flags override it.
 * There is deliberately no --password: a password on the command line ends up in the shell
 * history and the process list.
 */
export function addBrokerOptions(c: Command): Command {
  return c
    .option('--broker <url>', 'broker URL (mqtt://, mqtts://, ws://, wss://); default: mqtt.url of --config')
    .option(
      '-c, --config <file>',
      'a kiosk config file: its mqtt section (url, baseTopic, username, passwordFile, tls)',
    )
    .option('--base-topic <topic>', 'first topic level, as mqtt.baseTopic on the kiosks (default facegate)')
    .option('--username <name>', 'broker user name')
    .option('--password-file <file>', 'file whose first line is the broker password')
    .option('--ca <file>', 'CA certificate for TLS (PEM)')
    .option('--cert <file>', 'client certificate for TLS (PEM)')
    .option('--cert-key <file>', 'client certificate key for TLS (PEM)');
}

/** The broker the flags name (config file first, flags over it); warnings go to stderr. */
export async function brokerFromFlags(flags: OperatorBrokerFlags): Promise<OperatorBroker> {
  const { resolveOperatorBroker } = await import('../publish/operator.js');
  let mqtt = null;
  if (flags.config) {
    const { loadConfig } = await import('../config/load.js');
    mqtt = loadConfig({ file: flags.config }).mqtt;
  }
  const b = resolveOperatorBroker(flags, mqtt);
  for (const w of b.warnings) process.stderr.write(`warning: ${w}\n`);
  return b;
}
