/**
 * A kiosk's MQTT connection in its own process, so a test can read its peak RSS:
 * connects to argv[2] with protocol argv[3], subscribes to the update offer topic and
 * prints one JSON line per event: `ready` (with the peak RSS so far), `message` (payload
 * length) and, on the message "done", `peak` (peak RSS and oversized messages dropped).
 */
import { mqttSchema } from '../../src/config/schema.js';
import { MqttConnection, buildClientOptions } from '../../src/publish/mqtt.js';
import { Topics } from '../../src/publish/topics.js';

const [url, proto] = process.argv.slice(2);
const peakRss = (): number => process.resourceUsage().maxRSS * 1024;
const say = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');

const cfg = mqttSchema.parse({
  url,
  kioskId: 'door-1',
  protocolVersion: proto === '5' ? 5 : 4,
  maxPacketBytes: 1024 * 1024,
  reconnectMs: 200,
});
const topics = new Topics(cfg.baseTopic, cfg.kioskId);
const conn = new MqttConnection(
  url ?? '',
  buildClientOptions(cfg, topics),
  topics,
  () => undefined,
  cfg.maxPacketBytes,
);
await conn.start(5000);
await conn.subscribe('update/offer', (_t, payload) => {
  if (payload.toString() === 'done') {
    say({ peak: peakRss(), oversized: conn.oversizedPackets });
    void conn.stop().then(() => process.exit(0));
    return;
  }
  say({ message: payload.length });
});
say({ ready: peakRss(), connected: conn.connected });
