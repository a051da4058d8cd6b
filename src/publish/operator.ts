/**
 * The broker as operator commands reach it (`facegate publish-model`, `facegate enrol
 * publish-bundle`): the URL, base topic, credentials and TLS of a kiosk's own config
 * (`--config FILE`, its `mqtt` section), with command-line flags over it. One helper for
 * every operator command, so they reach a broker that needs a user, a password and TLS
 * the same way the kiosk does (brokerAuthOptions).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { mqttSchema, type MqttConfig } from '../config/schema.js';
import { FacegateError } from '../shared/errors.js';
import { redactUrl } from '../shared/url.js';
import { brokerAuthOptions } from './mqtt.js';

/** The flags every operator command takes (see addBrokerOptions in src/cli/broker.ts). */
export interface OperatorBrokerFlags {
  readonly broker?: string;
  readonly config?: string;
  readonly baseTopic?: string;
  readonly username?: string;
  readonly passwordFile?: string;
  readonly ca?: string;
  readonly cert?: string;
  readonly certKey?: string;
}

export interface OperatorBroker {
  readonly url: string;
  readonly baseTopic: string;
  /** Credentials, TLS, protocol and a client id of its own (never the kiosk's: the broker would drop the kiosk). */
  readonly clientOptions: IClientOptions;
  /** Things the operator should know (a password in the URL). */
  readonly warnings: readonly string[];
}

/**
 * Resolves the broker for an operator command: `mqtt` is the config file's section (null
 * without --config); flags override it. Throws FacegateError when no broker is given.
 */
export function resolveOperatorBroker(flags: OperatorBrokerFlags, mqtt: MqttConfig | null): OperatorBroker {
  const base = mqtt ?? mqttSchema.parse({});
  const url = flags.broker ?? base.url;
  if (!url)
    throw new FacegateError(
      mqtt
        ? `${flags.config ?? 'the config'} has no mqtt.url (the kiosk runs an embedded broker): give --broker URL`
        : 'no broker: give --broker URL, or --config FILE with the mqtt section of the kiosks',
    );
  const cfg: MqttConfig = {
    ...base,
    username: flags.username ?? base.username,
    // A password file given on the command line replaces any password of the config.
    ...(flags.passwordFile !== undefined ? { password: '', passwordFile: flags.passwordFile } : {}),
    tls: {
      ...base.tls,
      ca: flags.ca ?? base.tls.ca,
      cert: flags.cert ?? base.tls.cert,
      key: flags.certKey ?? base.tls.key,
    },
  };
  const warnings: string[] = [];
  let inUrl = false;
  try {
    inUrl = new URL(url).password !== '';
  } catch {
    // not parsable here; mqtt.js says what is wrong with it when connecting
  }
  if (inUrl)
    warnings.push(
      `the broker URL ${redactUrl(url)} carries a password: it shows in the process list and the shell history. Use --username with --password-file, or --config FILE with mqtt.passwordFile`,
    );
  return {
    url,
    baseTopic: flags.baseTopic ?? base.baseTopic,
    clientOptions: {
      protocolVersion: cfg.protocolVersion,
      clientId: `facegate-operator-${randomBytes(4).toString('hex')}`,
      ...brokerAuthOptions(cfg),
    },
    warnings,
  };
}

/** Connects once (no reconnects); the error names the broker without a password in its URL. */
export async function connectOperator(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  let client: MqttClient;
  try {
    client = await connectAsync(url, { reconnectPeriod: 0, connectTimeout: 10_000, ...options });
  } catch (err) {
    const why = (err as Error).message;
    const hint = /not authori[sz]ed|bad user name or password/i.test(why)
      ? ': give the broker user with --username and its password with --password-file (or --config FILE with mqtt.username / mqtt.passwordFile)'
      : '';
    throw new FacegateError(`cannot connect to ${redactUrl(url)}: ${why}${hint}`, { cause: err });
  }
  (client.stream as Partial<Socket> | undefined)?.setNoDelay?.(true);
  return client;
}
