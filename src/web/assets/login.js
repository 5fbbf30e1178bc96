// The admin login form: POSTs JSON (never a form post), then goes to /admin/.
const form = document.getElementById('login');
const error = document.getElementById('error');

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const body = JSON.stringify({
    user: document.getElementById('user').value,
    password: document.getElementById('password').value,
  });
  try {
    const r = await fetch('/admin/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      credentials: 'same-origin',
    });
    if (r.ok) {
      location.assign('/admin/');
      return;
    }
    const j = await r.json().catch(() => ({}));
    error.textContent = j.error || `login failed (${r.status})`;
  } catch (e) {
    error.textContent = `cannot reach the server: ${e}`;
  }
  error.hidden = false;
});
