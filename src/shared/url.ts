/** A URL as it may be printed or logged: a password in it becomes `***`. */
export function redactUrl(url: string): string {
  if (url === '') return url;
  try {
    const u = new URL(url);
    if (u.password === '') return url;
    u.password = '***';
    return u.toString();
  } catch {
    // Not a URL the parser takes; still hide anything between "//user:" and "@".
    return url.replace(/(\/\/[^/:@]*:)[^@/]*@/, '$1***@');
  }
}
