// The console's JSON API. Every state change carries the session's CSRF token in
// X-CSRF-Token; a 401 anywhere means the session ended, so the page goes to the login form.
let csrf = '';

export class ApiError extends Error {}

function signedOut() {
  location.assign('/console/login');
  return new ApiError('signed out');
}

async function answer(response) {
  if (response.status === 401) throw signedOut();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body.error ?? `${response.status} ${response.statusText}`);
  return body;
}

export async function loadSession() {
  const session = await answer(await fetch('/console/api/session', { headers: { accept: 'application/json' } }));
  csrf = session.csrf;
  return session;
}

export async function getJson(path) {
  return answer(await fetch(path, { headers: { accept: 'application/json' } }));
}

export async function post(path, body = {}) {
  return answer(
    await fetch(path, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify(body),
    }),
  );
}

export const revokeToken = (id) => post('/console/api/tokens/revoke', { id });

export async function logout() {
  await post('/console/logout').catch(() => undefined);
  location.assign('/console/login');
}
