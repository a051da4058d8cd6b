import type { Command } from 'commander';

/**
 * `facegate admin set-password`: writes the scrypt hash of a new admin password into the
 * given config file (`http.admin.passwordHash`), atomically; the rest of the file is kept.
 * The password is read from the terminal without echo, or from the first line of stdin.
 */
export function registerAdmin(program: Command): void {
  const admin = program.command('admin').description('administration of the kiosk web app');
  admin
    .command('set-password')
    .description(
      'set the admin password of the web app (/admin): stores its scrypt hash as http.admin.passwordHash in the config file; restart facegate to apply',
    )
    .requiredOption('-c, --config <file>', 'the config file facegate run uses (created when missing)')
    .action(async (opts: { config: string }) => {
      const { setAdminPassword, readPassword } = await import('../web/password.js');
      const password = await readPassword(process.stdin, process.stderr);
      await setAdminPassword(opts.config, password);
      process.stdout.write(
        `admin password set in ${opts.config} (http.admin.passwordHash); restart facegate to apply\n`,
      );
    });
}
