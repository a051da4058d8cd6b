// pm2 process file: `pm2 start ecosystem.config.cjs` (then `pm2 save` and `pm2 startup`).
// The daemon sends process.send('ready') once the model is loaded and the camera delivers
// frames, so pm2 counts a start only then (wait_ready).
module.exports = {
  apps: [
    {
      name: 'facegate',
      script: 'dist/src/cli.js',
      // FACEGATE_CONFIG=/path/to/config.json pm2 start ecosystem.config.cjs; without it, config/default.json + FACEGATE__* env.
      args: process.env.FACEGATE_CONFIG ? ['run', '--config', process.env.FACEGATE_CONFIG] : ['run'],
      cwd: __dirname,
      interpreter: 'node',
      exec_mode: 'fork', // one camera, one process
      instances: 1,
      autorestart: true,
      wait_ready: true,
      listen_timeout: 180000, // model load + first frame on a slow Pi
      kill_timeout: 15000, // more than daemon.shutdownTimeoutMs (10 s): the daemon's own timeout fires first
      exp_backoff_restart_delay: 200, // 200 ms, doubling up to 15 s, reset after 30 s of uptime
      max_memory_restart: '600M',
      min_uptime: 30000,
      env: {
        NODE_ENV: 'production',
      },
    },
  ],
};
