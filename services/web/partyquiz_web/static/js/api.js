// The JSON API of the web service as the pages use it: one fetch wrapper and one error type.
// Host session tokens live in localStorage; a 401 clears them so the app can ask to log in again.

const TOKEN_KEY = "partyquiz.host.session";

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `request failed (${status})`);
    this.status = status;
    this.code = body && body.code ? body.code : "error";
    this.errors = body && Array.isArray(body.errors) ? body.errors : [];
  }
}

export function hostToken() {
  return window.localStorage.getItem(TOKEN_KEY);
}

export function setHostToken(token) {
  if (token) window.localStorage.setItem(TOKEN_KEY, token);
  else window.localStorage.removeItem(TOKEN_KEY);
}

async function send(path, { method = "GET", json, body, auth = false, accept = "application/json", contentType = "application/json" } = {}) {
  const headers = { Accept: accept };
  if (auth) {
    const token = hostToken();
    if (token) headers.Authorization = `Bearer ${token}`;
  }
  let payload = body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(json);
  } else if (body !== undefined) {
    headers["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, { code: "network", message: "The server cannot be reached. Check your connection and try again." });
  }
  if (response.ok) return response;
  let errorBody = null;
  try {
    errorBody = await response.json();
  } catch {
    errorBody = null;
  }
  if (response.status === 401 && auth) setHostToken(null);
  throw new ApiError(response.status, errorBody);
}

/** Call the API and return the parsed JSON (or null for 204). Throws ApiError. */
export async function api(path, options = {}) {
  const response = await send(path, options);
  if (response.status === 204) return null;
  return response.json();
}

/** Download an authenticated resource as a file named by the server. */
export async function download(path, fallbackName, accept) {
  const response = await send(path, { auth: true, accept });
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(url), 10000);
}
