// The OpenID provider that tests/interop_oidc_provider.rs signs in at: the npm package
// `oidc-provider` (OpenID Certified), configured as a tenant's provider would be, on loopback.
//
// The test starts it with `node tests/interop/provider.mjs` and these environment variables:
//   INTEROP_CLIENT_ID, INTEROP_CLIENT_SECRET, INTEROP_REDIRECT_URI
// It listens on 127.0.0.1, a port the system picks, and prints one line to stdout when it is
// ready: {"issuer":"http://127.0.0.1:PORT"}. It exits when its stdin closes (the test ended).
//
// Provider configuration: one confidential client (client_secret_basic, code flow, refresh
// tokens), PKCE required for every client, refresh tokens rotated on every use (a reused one
// revokes the grant), RFC 7009 revocation, the package's own development login and consent
// pages (devInteractions: any login name is an account, any password is accepted).
//
// Test-only endpoints under /__test/, which a real provider does not have:
//   POST /__test/rotate-signing-key  a new signing key, published first in the JWKS and used
//                                    for every ID token from now on; the old key stays
//                                    published. Restarts the provider with the new key set
//                                    (the package's documented way to rotate keys); tokens,
//                                    grants and sessions live in the shared in-memory adapter
//                                    and survive. Answers {"kid": ..., "jwks": [kids]}.
//   GET  /__test/stats               how many requests each provider route received, such as
//                                    {"GET /jwks": 1, "POST /token": 3}.
//   GET  /__test/refresh-tokens      every refresh token issued, in order, with its state at
//                                    the provider: "active", "consumed" (rotated away) or
//                                    "gone" (revoked).
//   POST /__test/withdraw-consent?account=ID
//                                    revokes every grant of the account, as when the user
//                                    removes the application's access at the provider.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: the environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const client = {
  client_id: required('INTEROP_CLIENT_ID'),
  client_secret: required('INTEROP_CLIENT_SECRET'),
  redirect_uris: [required('INTEROP_REDIRECT_URI')],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
};

let keyCounter = 0;
function newSigningKey() {
  keyCounter += 1;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `interop-key-${keyCounter}-${randomBytes(4).toString('hex')}`,
    use: 'sig',
    alg: 'RS256',
  };
}

// Every account has the claims a tenant's directory would give.
async function findAccount(_ctx, id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: `${id}@interop.example`,
        email_verified: true,
        name: `Interop ${id}`,
      };
    },
  };
}

// Kept across restarts: the same cookies stay valid after a key rotation.
const cookieKeys = [randomBytes(32).toString('base64url')];
const refreshTokens = []; // [jti], in the order issued
const grantsByAccount = new Map(); // accountId -> Set(grantId)
const stats = {};

let issuer;
let signingKeys = [];
let provider;
let handle; // provider.callback() of the current provider

function build() {
  const p = new Provider(issuer, {
    clients: [client],
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    scopes: ['openid', 'offline_access'],
    findAccount,
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // The test moves the broker's clock hours ahead of the provider's (AheadClock) to age
    // access tokens. A refresh answers a new ID token, which the broker verifies (OpenID Connect
    // Core 12.2), `exp` included: it must outlive the broker's clock, not only the provider's.
    ttl: { IdToken: 24 * 60 * 60 },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
    },
  });
  p.on('refresh_token.saved', (token) => {
    if (!refreshTokens.includes(token.jti)) refreshTokens.push(token.jti);
  });
  p.on('grant.saved', (grant) => {
    if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Set());
    grantsByAccount.get(grant.accountId).add(grant.jti);
  });
  p.on('server_error', (_ctx, err) => console.error('provider.mjs: server_error', err));
  return p;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function testEndpoint(req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'POST /__test/rotate-signing-key': {
      const key = newSigningKey();
      signingKeys = [key, ...signingKeys];
      provider = build();
      handle = provider.callback();
      return json(res, 200, { kid: key.kid, jwks: signingKeys.map((k) => k.kid) });
    }
    case 'GET /__test/stats':
      return json(res, 200, stats);
    case 'GET /__test/refresh-tokens': {
      const list = [];
      for (const jti of refreshTokens) {
        const token = await provider.RefreshToken.find(jti, { ignoreExpiration: true });
        let state = 'gone';
        if (token) state = token.consumed ? 'consumed' : 'active';
        list.push({ token: jti, state });
      }
      return json(res, 200, list);
    }
    case 'POST /__test/withdraw-consent': {
      const account = url.searchParams.get('account');
      const grants = [...(grantsByAccount.get(account) ?? [])];
      for (const grantId of grants) {
        await Promise.all([
          provider.AccessToken.revokeByGrantId(grantId),
          provider.RefreshToken.revokeByGrantId(grantId),
          provider.AuthorizationCode.revokeByGrantId(grantId),
          provider.Grant.adapter.destroy(grantId),
        ]);
      }
      grantsByAccount.delete(account);
      return json(res, 200, { revoked_grants: grants.length });
    }
    default:
      return json(res, 404, { error: `no test endpoint ${route}` });
  }
}

const server = createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname.startsWith('/__test/')) {
    testEndpoint(req, res, url).catch((err) => {
      console.error('provider.mjs: test endpoint failed', err);
      json(res, 500, { error: String(err) });
    });
    return;
  }
  const route = `${req.method} ${url.pathname}`;
  stats[route] = (stats[route] ?? 0) + 1;
  handle(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  signingKeys = [newSigningKey()];
  provider = build();
  handle = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// The test holds our stdin: when it ends (or dies), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
