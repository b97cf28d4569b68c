// Headless OpenID Provider for sciauth integration tests and demos.
//
// Runs panva's OpenID-certified `oidc-provider` on 127.0.0.1 with fixed test
// clients, auto-login/auto-consent interactions, a device-flow `slow_down`
// shim, an RFC 8693 token-exchange grant, WLCG path-scope down-scoping on
// refresh, and a few /__test/ counters.
// See README.md for the fixture, the env knobs and the headless HTTP sequences.
//
// stdout carries exactly one line, `ISSUER=http://127.0.0.1:<port>`, printed
// once the server answers requests. Everything else goes to stderr.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import * as jose from 'jose';

// stdout is reserved for the single ISSUER= line: oidc-provider prints its
// NOTICEs with console.info, so send console.log/info to stderr before loading it.
console.log = console.error;
console.info = console.error;

const { default: Provider, errors, interactionPolicy } = await import('oidc-provider');
// Deep imports: oidc-provider 9.13.3 (pinned) has no "exports" map.
const { default: MemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
const { default: LRU } = await import('oidc-provider/lib/helpers/lru.js');
const { default: instance } = await import('oidc-provider/lib/helpers/weak_cache.js');
const { default: revokeGrant } = await import('oidc-provider/lib/helpers/revoke.js');

// ---------------------------------------------------------------- env knobs

function envInt(name, dflt) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`test-idp: ${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

function envPositive(name, dflt) {
  const n = envInt(name, dflt);
  if (n === 0) {
    console.error(`test-idp: ${name} must be > 0`);
    process.exit(2);
  }
  return n;
}

const PORT = envInt('PORT', 0);
const AT_TTL = envPositive('AT_TTL', 600);
const RT_TTL = envPositive('RT_TTL', 24 * 60 * 60);
const ID_TOKEN_TTL = envPositive('ID_TOKEN_TTL', 3600);
const DEVICE_TTL = envPositive('DEVICE_TTL', 600);
const DEVICE_INTERVAL = envInt('DEVICE_INTERVAL', 1);
const ROTATE_REFRESH_TOKEN = process.env.ROTATE_REFRESH_TOKEN !== '0';
const DEFAULT_USER = process.env.DEFAULT_USER || 'test-user';
const DEVICE_USER = process.env.DEVICE_USER || DEFAULT_USER;
const PKJWT_JWKS_FILE = process.env.PKJWT_JWKS_FILE || '';
const EXACT_REDIRECT_URIS = (process.env.EXACT_REDIRECT_URIS || 'http://127.0.0.1:8765/callback')
  .split(/\s+/).filter(Boolean);
const EXIT_ON_STDIN_CLOSE = process.env.EXIT_ON_STDIN_CLOSE ?? 'auto';
const LOG = process.env.LOG === '1';
// The Rucio server as a client (Rucio-brokered OIDC): its redirect URI (`.../auth/oidc_code`
// of the Rucio auth server), which registers the client `rucio`.
const RUCIO_REDIRECT_URI = process.env.RUCIO_REDIRECT_URI || '';

const log = (...args) => console.error('test-idp:', ...args);

// ---------------------------------------------------------------- constants

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const TT_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const TT_REFRESH_TOKEN = 'urn:ietf:params:oauth:token-type:refresh_token';

// WLCG storage scopes (WLCG Common JWT Profiles 3.3) a login may ask for. A refresh may
// ask for any path below them (see "WLCG down-scoping" below).
const WLCG_SCOPES = ['storage.read:/', 'storage.create:/home', 'storage.modify:/home', 'storage.stage:/'];
const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', ...WLCG_SCOPES];

// Resource servers (RFC 8707). Keyed by resource indicator.
const RESOURCE_SERVERS = {
  'https://api.example.test': { scope: 'api:read api:write', audience: 'https://api.example.test' },
  'https://other.example.test': { scope: 'other:read', audience: 'other-api' },
  // The Rucio server's own resource: the `rucio` client's default, so that its access tokens
  // are JWTs (Rucio reads their claims when it refreshes them).
  'https://rucio.example.test': { scope: 'rucio', audience: 'rucio' },
};
const RUCIO_RESOURCE = 'https://rucio.example.test';

function resourceServerInfo(indicator) {
  const rs = RESOURCE_SERVERS[indicator];
  if (!rs) return undefined;
  return {
    scope: rs.scope,
    audience: rs.audience,
    accessTokenTTL: AT_TTL,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
  };
}

// Token exchange may name the target by resource indicator or by audience.
function findTarget(name) {
  if (RESOURCE_SERVERS[name]) return name;
  return Object.keys(RESOURCE_SERVERS).find((k) => RESOURCE_SERVERS[k].audience === name);
}

// ---------------------------------------------------------------- clients

const LOOPBACK_REDIRECT = 'http://127.0.0.1/callback';

const clients = [
  {
    client_id: 'cc-basic',
    client_secret: 'cc-basic-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'cc-post',
    client_secret: 'cc-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
    grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'native-app',
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    grant_types: ['authorization_code', 'refresh_token', DEVICE_CODE_GRANT],
    response_types: ['code'],
    redirect_uris: [LOOPBACK_REDIRECT],
  },
  {
    client_id: 'code-secret',
    client_secret: 'code-secret-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'native',
    grant_types: [
      'authorization_code', 'refresh_token', DEVICE_CODE_GRANT,
      'client_credentials', TOKEN_EXCHANGE_GRANT,
    ],
    response_types: ['code'],
    redirect_uris: [LOOPBACK_REDIRECT],
  },
];

// A client whose provider accepts only the exact redirect URIs it registered, as INDIGO
// IAM and many CILogon clients do: a web client, so no loopback port is relaxed (RFC 8252
// 7.3 applies to native clients only). EXACT_REDIRECT_URIS replaces the default one.
for (const uri of EXACT_REDIRECT_URIS) {
  if (!/^http:\/\/127\.0\.0\.1:[1-9][0-9]*\//.test(uri)) {
    log(`EXACT_REDIRECT_URIS: ${JSON.stringify(uri)} is not http://127.0.0.1:<port>/...`);
    process.exit(2);
  }
}
clients.push({
  client_id: 'exact-redirect',
  token_endpoint_auth_method: 'none',
  application_type: 'web',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: EXACT_REDIRECT_URIS,
});

if (RUCIO_REDIRECT_URI) {
  // As a Rucio server registers itself: a confidential web client whose code flow has no
  // PKCE (pyoidc sends none) and which gets refresh tokens without offline_access (the
  // default of oidc-provider for such clients).
  clients.push({
    client_id: 'rucio',
    client_secret: 'rucio-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: [RUCIO_REDIRECT_URI],
  });
}

if (PKJWT_JWKS_FILE) {
  let jwks;
  try {
    jwks = JSON.parse(fs.readFileSync(PKJWT_JWKS_FILE, 'utf8'));
  } catch (err) {
    log(`cannot read PKJWT_JWKS_FILE ${PKJWT_JWKS_FILE}: ${err.message}`);
    process.exit(2);
  }
  if (!jwks || !Array.isArray(jwks.keys) || jwks.keys.length === 0) {
    log(`PKJWT_JWKS_FILE ${PKJWT_JWKS_FILE} is not a JWKS ({"keys":[...]})`);
    process.exit(2);
  }
  for (const k of jwks.keys) {
    if (k.d || k.p || k.q || k.k) {
      log('PKJWT_JWKS_FILE must contain public keys only');
      process.exit(2);
    }
  }
  clients.push({
    client_id: 'pkjwt-client',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks,
    grant_types: ['client_credentials', TOKEN_EXCHANGE_GRANT, 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  });
}

// ---------------------------------------------------------------- signing key

const kid = crypto.randomUUID();
const { privateKey } = await jose.generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
const { d, p, q, dp, dq, qi, ...publicJwk } = privateJwk;
const localJwks = jose.createLocalJWKSet({ keys: [publicJwk] });

// ---------------------------------------------------------------- HTTP server

const server = http.createServer();
server.keepAliveTimeout = 1000;

try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
} catch (err) {
  log(`cannot listen on 127.0.0.1:${PORT}: ${err.code || err.message}`);
  process.exit(1);
}

const ISSUER = `http://127.0.0.1:${server.address().port}`;

// ---------------------------------------------------------------- storage
// oidc-provider's in-memory adapter, with two changes: a much larger LRU
// (upstream keeps only 1000 entries, which long test runs can overflow), and
// device codes kept for an hour past their expiry, so a late poll gets
// `expired_token` (upstream has already forgotten the code and says invalid_grant).

const STORE = new LRU({ maxSize: 500000 });
const DEVICE_CODE_GRACE = 3600;

class TestAdapter extends MemoryAdapter {
  constructor(model) {
    super(model, STORE, 0);
  }

  async upsert(id, payload, expiresIn) {
    const keep = this.model === 'DeviceCode' && typeof expiresIn === 'number'
      ? expiresIn + DEVICE_CODE_GRACE
      : expiresIn;
    return super.upsert(id, payload, keep);
  }
}

// ---------------------------------------------------------------- accounts

async function findAccount(ctx, id) {
  if (!id) return undefined;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: `${id}@example.test`,
        email_verified: true,
        name: id,
        preferred_username: id,
      };
    },
  };
}

// ---------------------------------------------------------------- device pages
// Minimal HTML; the form markup (field names) is oidc-provider's own.
// The X-Test-Device-Page header tells a headless client where it is.

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(ctx, kind, title, inner) {
  ctx.set('X-Test-Device-Page', kind);
  ctx.type = 'html';
  ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body data-page="${esc(kind)}"><h1>${esc(title)}</h1>
${inner}
</body></html>`;
}

async function userCodeInputSource(ctx, form, out, err) {
  let kind = 'input';
  let msg = 'Enter the code displayed on your device';
  if (err && err.name === 'AbortedError') {
    kind = 'aborted';
    msg = 'The Sign-in request was interrupted';
  } else if (err) {
    kind = 'error';
    msg = `${err.name}: ${err.message}`;
  }
  const errAttr = out ? ` data-error="${esc(out.error)}"` : '';
  page(ctx, kind, 'Sign-in', `<p id="message"${errAttr}>${esc(msg)}</p>
${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
}

async function userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
  page(ctx, 'confirm', 'Confirm Device', `<p>${esc(client.clientName || client.clientId)} - code <code>${esc(userCode)}</code></p>
${form}
<button autofocus type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">[ Abort ]</button>`);
}

async function successSource(ctx) {
  page(ctx, 'success', 'Sign-in Success', '<p>Your sign-in was successful, you can now close this page.</p>');
}

// ---------------------------------------------------------------- provider

// Extra login check: a login_hint (or a device approval login_hint) naming a
// user other than the one in the current session forces a login prompt
// instead of silently reusing the session's user.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'login_hint_mismatch',
  'login_hint names another user than the current session',
  (ctx) => {
    const hint = ctx.state?.testDeviceLoginHint || ctx.oidc.params.login_hint;
    const current = ctx.oidc.session?.accountId;
    if (hint && current && hint !== current) return interactionPolicy.Check.REQUEST_PROMPT;
    return interactionPolicy.Check.NO_NEED_TO_PROMPT;
  },
));

const configuration = {
  adapter: (model) => new TestAdapter(model),
  clients,
  jwks: { keys: [privateJwk] },
  findAccount,
  scopes: OIDC_SCOPES,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      userCodeInputSource,
      userCodeConfirmSource,
      successSource,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client) => (client?.clientId === 'rucio' ? RUCIO_RESOURCE : undefined),
      useGrantedResource: () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        const info = resourceServerInfo(resourceIndicator);
        if (!info) throw new errors.InvalidTarget();
        return info;
      },
    },
  },
  pkce: { required: (ctx, client) => client.clientId !== 'rucio' },
  rotateRefreshToken: ROTATE_REFRESH_TOKEN,
  async issueRefreshToken(ctx, client, code) {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    // oidc-provider's default for confidential web clients (the `rucio` client), kept strict
    // (offline_access) for the native ones the other tests use.
    if (client.clientId === 'rucio') return true;
    return code.scopes.has('offline_access');
  },
  async extraTokenClaims(ctx, token) {
    // `act` (RFC 8693 4.1) for tokens minted by the token-exchange grant with an actor_token.
    return token.testAct ? { act: token.testAct } : undefined;
  },
  ttl: {
    AccessToken: AT_TTL,
    ClientCredentials: AT_TTL,
    RefreshToken: RT_TTL,
    IdToken: ID_TOKEN_TTL,
    DeviceCode: DEVICE_TTL,
    AuthorizationCode: 60,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: Math.max(14 * 24 * 3600, RT_TTL * 2),
  },
  clockTolerance: 0,
  async renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
};

const provider = new Provider(ISSUER, configuration);

// ---------------------------------------------------------------- token exchange (RFC 8693)

const looksLikeJwt = (v) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(v);

async function resolveSubjectToken(value, type, label) {
  if (type === TT_ACCESS_TOKEN) {
    if (looksLikeJwt(value)) {
      try {
        const { payload } = await jose.jwtVerify(value, localJwks, {
          issuer: ISSUER, typ: 'at+jwt', algorithms: ['RS256'], clockTolerance: 0,
        });
        if (!payload.sub) throw new Error('no sub');
        return {
          sub: payload.sub,
          scopes: new Set(String(payload.scope || '').split(' ').filter(Boolean)),
          clientId: payload.client_id,
        };
      } catch {
        throw new errors.InvalidGrant(`${label} is invalid, expired or not issued by this server`);
      }
    }
    const token = (await provider.AccessToken.find(value))
      || (await provider.ClientCredentials.find(value));
    if (!token || !token.isValid) {
      throw new errors.InvalidGrant(`${label} is invalid, expired or revoked`);
    }
    if (token.grantId && !(await provider.Grant.find(token.grantId))) {
      throw new errors.InvalidGrant(`${label} grant was revoked`);
    }
    return { sub: token.accountId || token.clientId, scopes: token.scopes, clientId: token.clientId };
  }
  if (type === TT_REFRESH_TOKEN) {
    const token = await provider.RefreshToken.find(value);
    if (!token || !token.isValid) {
      throw new errors.InvalidGrant(`${label} is invalid, expired, used or revoked`);
    }
    if (token.grantId && !(await provider.Grant.find(token.grantId))) {
      throw new errors.InvalidGrant(`${label} grant was revoked`);
    }
    return { sub: token.accountId, scopes: token.scopes, clientId: token.clientId };
  }
  throw new errors.InvalidRequest(`unsupported ${label}_type`);
}

async function tokenExchangeHandler(ctx) {
  const p = ctx.oidc.params;
  const { client } = ctx.oidc;

  for (const name of ['subject_token', 'subject_token_type']) {
    if (!p[name]) throw new errors.InvalidRequest(`missing required parameter '${name}'`);
  }
  if (!!p.actor_token !== !!p.actor_token_type) {
    throw new errors.InvalidRequest('actor_token and actor_token_type must be used together');
  }

  const requestedType = p.requested_token_type || TT_ACCESS_TOKEN;
  if (requestedType !== TT_ACCESS_TOKEN && requestedType !== TT_REFRESH_TOKEN) {
    throw new errors.InvalidRequest('unsupported requested_token_type');
  }
  if (requestedType === TT_REFRESH_TOKEN && !client.grantTypeAllowed('refresh_token')) {
    throw new errors.InvalidRequest('client is not allowed the refresh_token grant');
  }

  const subject = await resolveSubjectToken(p.subject_token, p.subject_token_type, 'subject_token');
  const actor = p.actor_token
    ? await resolveSubjectToken(p.actor_token, p.actor_token_type, 'actor_token')
    : undefined;

  // Target: `resource` and/or `audience` (one value each); both must agree.
  const named = [p.resource, p.audience].filter(Boolean);
  if (named.length === 0) {
    throw new errors.InvalidTarget('resource or audience is required');
  }
  const targets = new Set(named.map(findTarget));
  if (targets.has(undefined)) throw new errors.InvalidTarget();
  if (targets.size !== 1) throw new errors.InvalidTarget('resource and audience name different targets');
  const [target] = targets;
  const info = resourceServerInfo(target);

  // Scope: requested (or the subject's) intersected with the target's scopes.
  const allowed = new Set(info.scope.split(' '));
  const requested = p.scope ? p.scope.split(' ').filter(Boolean) : [...subject.scopes];
  const granted = [...new Set(requested)].filter((s) => allowed.has(s));
  if (granted.length === 0) {
    throw new errors.InvalidScope('requested scope is not allowed for the target', requested.join(' ') || undefined);
  }
  const scope = granted.join(' ');

  // A Grant makes the issued tokens revocable and lets an issued refresh
  // token be used with grant_type=refresh_token by this client.
  const grant = new provider.Grant({ accountId: subject.sub, clientId: client.clientId });
  grant.addResourceScope(target, scope);
  const grantId = await grant.save();

  const at = new provider.AccessToken({
    accountId: subject.sub,
    client,
    grantId,
    gty: TOKEN_EXCHANGE_GRANT,
    scope,
  });
  at.resourceServer = new provider.ResourceServer(target, info);
  if (actor) at.testAct = { sub: actor.sub };
  const accessToken = await at.save();

  const body = {
    access_token: accessToken,
    issued_token_type: TT_ACCESS_TOKEN,
    token_type: 'Bearer',
    expires_in: at.expiration,
    scope,
  };

  if (requestedType === TT_REFRESH_TOKEN) {
    const rt = new provider.RefreshToken({
      accountId: subject.sub,
      client,
      grantId,
      gty: TOKEN_EXCHANGE_GRANT,
      resource: target,
      scope,
    });
    body.refresh_token = await rt.save();
  }

  ctx.body = body;
}

provider.registerGrantType(TOKEN_EXCHANGE_GRANT, tokenExchangeHandler, [
  'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type',
  'requested_token_type', 'resource', 'audience', 'scope',
]);

// ---------------------------------------------------------------- WLCG down-scoping
// The WLCG JWT profile: `storage.read:/` grants `storage.read:/sub/dir`. Upstream refreshes
// only for scopes the refresh token holds character for character; a refresh asking for a
// path below one it holds gets an access token with exactly the scopes asked for (as INDIGO
// IAM does). Anything else goes to upstream's handler unchanged.

const PATH_AUTHZ = new Set(['storage.read', 'storage.create', 'storage.modify', 'storage.stage', 'read', 'write']);

function pathScope(scope) {
  const colon = scope.indexOf(':');
  if (colon < 0) return undefined;
  const authz = scope.slice(0, colon);
  const path = scope.slice(colon + 1);
  if (!PATH_AUTHZ.has(authz) || !path.startsWith('/')) return undefined;
  // eslint-disable-next-line no-control-regex
  if (/[%\\?#\x00-\x1f\x7f]/.test(path)) return undefined;
  const trimmed = path.replace(/\/+$/, '') || '/';
  if (trimmed !== '/' && trimmed.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return undefined;
  }
  return [authz, trimmed];
}

function wlcgGrants(held, wanted) {
  if (held === wanted) return true;
  const h = pathScope(held);
  const w = pathScope(wanted);
  if (!h || !w || h[0] !== w[0]) return false;
  return h[1] === '/' || w[1] === h[1] || w[1].startsWith(`${h[1]}/`);
}

async function downscopedRefresh(ctx, refreshToken, scopes) {
  const { client } = ctx.oidc;
  if (refreshToken.clientId !== client.clientId) throw new errors.InvalidGrant('client mismatch');
  if (refreshToken.isExpired) throw new errors.InvalidGrant('refresh token is expired');
  const grant = await provider.Grant.find(refreshToken.grantId);
  if (!grant || grant.clientId !== client.clientId) throw new errors.InvalidGrant('grant not found');
  if (refreshToken.consumed) {
    await Promise.all([refreshToken.destroy(), revokeGrant(ctx, refreshToken.grantId)]);
    throw new errors.InvalidGrant('refresh token already used');
  }
  let refreshTokenValue = ctx.oidc.params.refresh_token;
  if (ROTATE_REFRESH_TOKEN) {
    await refreshToken.consume();
    const rotated = new provider.RefreshToken({
      accountId: refreshToken.accountId,
      acr: refreshToken.acr,
      amr: refreshToken.amr,
      authTime: refreshToken.authTime,
      claims: refreshToken.claims,
      client,
      expiresWithSession: refreshToken.expiresWithSession,
      iiat: refreshToken.iiat,
      grantId: refreshToken.grantId,
      gty: refreshToken.gty,
      nonce: refreshToken.nonce,
      resource: refreshToken.resource,
      rotations: typeof refreshToken.rotations === 'number' ? refreshToken.rotations + 1 : 1,
      scope: refreshToken.scope,
      sessionUid: refreshToken.sessionUid,
      sid: refreshToken.sid,
    });
    refreshTokenValue = await rotated.save();
  }
  const at = new provider.AccessToken({
    accountId: refreshToken.accountId,
    claims: refreshToken.claims,
    client,
    expiresWithSession: refreshToken.expiresWithSession,
    grantId: refreshToken.grantId,
    gty: 'refresh_token',
    scope: scopes.join(' '),
    sessionUid: refreshToken.sessionUid,
    sid: refreshToken.sid,
  });
  const accessToken = await at.save();
  ctx.body = {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: at.expiration,
    scope: at.scope,
    refresh_token: refreshTokenValue,
  };
}

{
  const handlers = instance(provider).grantTypeHandlers;
  const upstreamRefresh = handlers.get('refresh_token');
  handlers.set('refresh_token', async (ctx) => {
    const scopes = [...new Set(String(ctx.oidc.params.scope || '').split(' ').filter(Boolean))];
    const value = ctx.oidc.params.refresh_token;
    const refreshToken = scopes.length && value
      ? await provider.RefreshToken.find(value, { ignoreExpiration: true })
      : undefined;
    const held = refreshToken ? [...refreshToken.scopes] : [];
    const below = scopes.filter((s) => !held.includes(s));
    if (
      !refreshToken
      || below.length === 0
      || !below.every((s) => held.some((h) => wlcgGrants(h, s)))
    ) {
      return upstreamRefresh(ctx);
    }
    return downscopedRefresh(ctx, refreshToken, scopes);
  });
}

// ---------------------------------------------------------------- test counters

function freshCounts() {
  return {
    requests: {},
    success: {},
    failures: {},
    revocation: 0,
    introspection: 0,
    device_authorization: 0,
    userinfo: 0,
    authorization: 0,
  };
}
let counts = freshCounts();
const bump = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };

// Reads an urlencoded body ourselves (oidc-provider then takes it from req.body).
async function preReadForm(ctx) {
  if (!ctx.is('application/x-www-form-urlencoded') || !ctx.req.readable) return undefined;
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false })) {
    size += chunk.length;
    if (size > 56 * 1024) break;
    chunks.push(chunk);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  ctx.req.body = raw;
  return querystring.parse(raw);
}

const first = (v) => (Array.isArray(v) ? v[0] : v);

// client_credentials scope policy (stricter than upstream, which silently drops
// scopes it cannot grant): with `resource`, every requested scope must belong to
// that resource; without `resource`, only the OIDC scopes are allowed.
function clientCredentialsScopeError(form) {
  const scope = first(form.scope);
  if (!scope) return undefined;
  const resource = first(form.resource);
  const rs = resource ? RESOURCE_SERVERS[resource] : undefined;
  if (resource && !rs) return undefined; // upstream answers invalid_target
  const allowed = new Set(rs ? rs.scope.split(' ') : OIDC_SCOPES);
  const bad = scope.split(' ').filter((x) => x && !allowed.has(x));
  if (bad.length === 0) return undefined;
  return {
    error: 'invalid_scope',
    error_description: rs
      ? `scope not offered by resource ${resource}`
      : 'scope not allowed without a resource parameter (resource scopes need resource=...)',
    scope: bad.join(' '),
  };
}

// ---------------------------------------------------------------- middlewares

const lastDevicePoll = new Map(); // device_code -> ms of the previous poll
const deviceLoginByUserCode = new Map(); // normalized user_code -> login_hint (from GET /device)
const deviceLoginByInteraction = new Map(); // interaction uid -> login_hint (from POST /device)
const normUserCode = (c) => String(c || '').toUpperCase().replace(/[^A-Z0-9]/g, '');

// Request log (LOG=1).
provider.use(async (ctx, next) => {
  const t = Date.now();
  try {
    await next();
  } finally {
    if (LOG) log(`${ctx.method} ${ctx.path} -> ${ctx.status} (${Date.now() - t} ms)`);
  }
});

// /__test/ endpoints.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/__test/')) return next();
  ctx.set('Cache-Control', 'no-store');
  if (ctx.path === '/__test/counts' && ctx.method === 'GET') {
    ctx.body = counts;
    return undefined;
  }
  if (ctx.path === '/__test/reset-counts' && ctx.method === 'POST') {
    counts = freshCounts();
    ctx.body = counts;
    return undefined;
  }
  ctx.status = 404;
  ctx.body = { error: 'not_found', error_description: 'unknown test endpoint' };
  return undefined;
});

// Token endpoint: count (before the grant runs), device slow_down shim.
provider.use(async (ctx, next) => {
  if (ctx.path !== '/token' || ctx.method !== 'POST') return next();

  const form = (await preReadForm(ctx)) || {};
  const grantType = first(form.grant_type) || '(none)';
  bump(counts.requests, grantType);

  const now = Date.now();
  const deviceCode = grantType === DEVICE_CODE_GRANT ? first(form.device_code) : undefined;

  const ccScopeError = grantType === 'client_credentials' ? clientCredentialsScopeError(form) : undefined;

  await next();

  if (ccScopeError && ctx.status === 200) {
    // Client authentication passed, but the peer is stricter than upstream
    // about scopes (upstream silently drops them): answer invalid_scope.
    ctx.status = 400;
    ctx.body = ccScopeError;
  }

  if (deviceCode) {
    const prev = lastDevicePoll.get(deviceCode);
    lastDevicePoll.set(deviceCode, now);
    if (
      ctx.status === 400
      && ctx.body?.error === 'authorization_pending'
      && prev !== undefined
      && now - prev < DEVICE_INTERVAL * 1000
    ) {
      ctx.body = {
        error: 'slow_down',
        error_description: `polling faster than the ${DEVICE_INTERVAL}s interval`,
      };
    }
    if (ctx.status === 200 || ['expired_token', 'access_denied', 'invalid_grant'].includes(ctx.body?.error)) {
      lastDevicePoll.delete(deviceCode);
    }
  }

  if (ctx.status === 200) {
    bump(counts.success, grantType);
  } else {
    counts.failures[grantType] ??= {};
    bump(counts.failures[grantType], ctx.body?.error || String(ctx.status));
  }
  return undefined;
});

// Other counters, device_authorization `interval`, discovery scopes_supported.
provider.use(async (ctx, next) => {
  const { path, method } = ctx;
  if (path === '/token/revocation' && method === 'POST') counts.revocation += 1;
  else if (path === '/token/introspection' && method === 'POST') counts.introspection += 1;
  else if (path === '/device/auth' && method === 'POST') counts.device_authorization += 1;
  else if (path === '/me') counts.userinfo += 1;
  else if (path === '/auth') counts.authorization += 1;

  await next();

  if (path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: DEVICE_INTERVAL };
  }
  if (
    (path === '/.well-known/openid-configuration' || path === '/.well-known/oauth-authorization-server')
    && ctx.status === 200 && ctx.body && typeof ctx.body === 'object'
  ) {
    const extra = Object.values(RESOURCE_SERVERS).flatMap((rs) => rs.scope.split(' '));
    ctx.body = {
      ...ctx.body,
      scopes_supported: [...new Set([...(ctx.body.scopes_supported || []), ...extra])],
    };
  }
});

// Device verification: optional login_hint for the approving user.
//   GET  /device?user_code=X&login_hint=alice   (remembered per user_code)
//   POST /device  ... &login_hint=alice          (form field or query parameter)
provider.use(async (ctx, next) => {
  if (ctx.path !== '/device') return next();

  if (ctx.method === 'GET') {
    if (ctx.query.login_hint && ctx.query.user_code) {
      deviceLoginByUserCode.set(normUserCode(first(ctx.query.user_code)), String(first(ctx.query.login_hint)));
    }
    await next();
    // Convenience copy of the form's xsrf value (the HTML form stays authoritative).
    const m = typeof ctx.body === 'string' && /name="xsrf" value="([^"]*)"/.exec(ctx.body);
    if (m) ctx.set('X-Test-Device-Xsrf', m[1]);
    return undefined;
  }

  if (ctx.method !== 'POST') return next();
  const form = (await preReadForm(ctx)) || {};
  const hint = first(form.login_hint) || first(ctx.query.login_hint)
    || deviceLoginByUserCode.get(normUserCode(first(form.user_code)));
  if (hint) ctx.state.testDeviceLoginHint = String(hint);

  await next();

  const location = ctx.response.get('Location');
  const m = location && /\/interaction\/([^/?#]+)/.exec(location);
  if (hint && m) deviceLoginByInteraction.set(m[1], String(hint));
  return undefined;
});

// Headless login + consent: GET /interaction/:uid  and  GET /interaction/:uid/abort
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)(\/abort)?$/.exec(ctx.path);
  if (!m || ctx.method !== 'GET') return next();
  const [, uid, abort] = m;
  ctx.set('Cache-Control', 'no-store');

  try {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) {
      throw new errors.SessionNotFound('interaction cookie does not match the URL');
    }
    const { prompt, params, session } = details;
    const isDevice = typeof details.returnTo === 'string' && details.returnTo.includes('/device/');
    let result;

    if (abort) {
      result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    } else if (prompt.name === 'login') {
      const accountId = (isDevice && deviceLoginByInteraction.get(uid))
        || params.login_hint
        || (isDevice ? DEVICE_USER : DEFAULT_USER);
      if (session?.accountId && session.accountId !== accountId) {
        // Switching users in a jar that holds another user's session: end that
        // session here, so the resume step does not answer with oidc-provider's
        // "confirm logout" form and the flow continues straight to consent.
        const old = await provider.Session.findByUid(session.uid);
        if (old) await old.destroy();
        delete details.session;
        await details.save(details.exp - Math.floor(Date.now() / 1000));
      }
      result = { login: { accountId } };
    } else if (prompt.name === 'consent') {
      let grant;
      if (details.grantId) grant = await provider.Grant.find(details.grantId);
      if (!grant) {
        grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      }
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      if (missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missingResourceScopes)) {
          grant.addResourceScope(indicator, scopes.join(' '));
        }
      }
      result = { consent: { grantId: await grant.save() } };
    } else {
      throw new errors.InvalidRequest(`unsupported prompt ${prompt.name}`);
    }

    if (LOG) log(`interaction ${uid} ${abort ? 'abort' : prompt.name} ${JSON.stringify(result)}`);
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true });
    if (abort || prompt.name === 'consent') deviceLoginByInteraction.delete(uid);
    ctx.status = 303;
    ctx.redirect(returnTo);
  } catch (err) {
    ctx.status = err.statusCode || err.status || 500;
    ctx.type = 'json';
    ctx.body = {
      error: err.error || 'server_error',
      error_description: err.error_description || err.message,
    };
  }
  return undefined;
});

provider.on('server_error', (ctx, err) => log('server_error', ctx.method, ctx.path, err));

// ---------------------------------------------------------------- go

server.on('request', provider.callback());

function shutdown(why) {
  log(`exiting (${why})`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

// Exit when stdin closes, so a killed parent never leaves us running.
// auto (default): only when stdin is a pipe or socket (not a TTY, /dev/null or a file).
{
  let watch = false;
  if (EXIT_ON_STDIN_CLOSE === '1') watch = true;
  else if (EXIT_ON_STDIN_CLOSE !== '0') {
    try {
      const st = fs.fstatSync(0);
      watch = st.isFIFO() || st.isSocket();
    } catch {
      watch = false;
    }
  }
  if (watch) {
    process.stdin.on('data', () => {});
    process.stdin.on('end', () => shutdown('stdin closed'));
    process.stdin.on('error', () => shutdown('stdin error'));
    process.stdin.resume();
  }
  log(`stdin watch ${watch ? 'on' : 'off'}; kid=${kid}; clients=${clients.map((c) => c.client_id).join(',')}`);
}

process.stdout.write(`ISSUER=${ISSUER}\n`);
