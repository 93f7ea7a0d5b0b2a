// A stock js-libp2p 3.x node (TCP, Noise, yamux, identify, ping) for SecureMesh's interop tests.
//   node libp2p-node.mjs listen [PORT] [--handle-after-identify PROTO]
//                                                            listen on 127.0.0.1 (PORT 0 or none: any), answer ping, identify and
//                                                            identify push; with the flag, start serving PROTO once a peer has
//                                                            identified (js then pushes its new protocols to that peer)
//   node libp2p-node.mjs dial MULTIADDR [--ping N] [--identify] [--concurrent-pings N]
//   node libp2p-node.mjs peerid                              print the Peer ID the node would have
//   node libp2p-node.mjs relay [PORT]                        listen on 127.0.0.1 as a circuit relay v2 server (@libp2p/circuit-relay-v2)
//   node libp2p-node.mjs reserve RELAY_MULTIADDR              reserve a slot on the relay, print the circuit addresses, answer ping
// Every node can dial /p2p-circuit addresses (circuitRelayTransport).
// With LIBP2P_SEED set (64 hex digits), the node's Ed25519 key derives from it, so a test can trust it beforehand.
// With LIBP2P_UNTIL_SIGNAL set, a listener ignores its stdin and runs until SIGTERM.
// Prints one JSON object per line on stdout: {"event":"listening",...}, {"event":"connected",...}, {"event":"ping","rtt":MS},
// {"event":"identify",...}, {"event":"concurrent-pings","ok":N,"failed":M}, {"event":"error","message":...}, {"event":"done"}.
// A listener runs until stdin closes (or it is killed); a dialer exits 0 when everything it was asked to do succeeded.

import './polyfill.mjs' // Promise.withResolvers for Node 20, before libp2p is loaded

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify, identifyPush } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { circuitRelayServer, circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
const { multiaddr } = await import('@multiformats/multiaddr')
const { generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')

async function fixedKey () {
  const seed = process.env.LIBP2P_SEED
  return seed ? generateKeyPairFromSeed('Ed25519', Uint8Array.from(Buffer.from(seed, 'hex'))) : undefined
}

const out = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
const hex = (bytes) => Buffer.from(bytes ?? []).toString('hex')

function describeConnection (connection) {
  return {
    peerId: connection.remotePeer.toString(),
    remoteAddr: connection.remoteAddr.toString(),
    direction: connection.direction,
    encryption: connection.encryption ?? null,
    multiplexer: connection.multiplexer ?? null
  }
}

function describeIdentify (result) {
  return {
    peerId: result.peerId.toString(),
    protocolVersion: result.protocolVersion ?? null,
    agentVersion: result.agentVersion ?? null,
    publicKey: hex(result.publicKey),
    protocols: result.protocols ?? [],
    listenAddrs: (result.listenAddrs ?? []).map(String),
    observedAddr: result.observedAddr?.toString() ?? null
  }
}

async function start (listen, extraServices = {}) {
  const streams = 256
  return createLibp2p({
    privateKey: await fixedKey(),
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify({ timeout: 10000 }),
      identifyPush: identifyPush({ timeout: 10000 }),
      ping: ping({ maxInboundStreams: streams, maxOutboundStreams: streams, timeout: 10000 }),
      ...extraServices
    },
    connectionManager: { inboundConnectionThreshold: 1000 }
  })
}

async function untilStopped () {
  await new Promise((resolve) => {
    if (!process.env.LIBP2P_UNTIL_SIGNAL) {
      process.stdin.on('end', resolve)
      process.stdin.on('close', resolve)
      process.stdin.resume()
    }
    process.on('SIGTERM', resolve)
  })
}

// A relay server with js-libp2p's default limits (2 minutes, 128 KiB per circuit): prints "listening", then
// "connection" events, and "reservation"/"circuit" as its relay service serves them.
async function relayMode ([port]) {
  const node = await start([`/ip4/127.0.0.1/tcp/${Number(port ?? 0)}`], { relay: circuitRelayServer() })
  node.addEventListener('connection:open', (evt) => out('connection', describeConnection(evt.detail)))
  node.addEventListener('relay:reservation', (evt) => out('reservation', { peerId: evt.detail?.peer?.toString?.() ?? null }))
  node.addEventListener('relay:advert:success', () => out('advert'))
  out('listening', { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(String) })
  await untilStopped()
  await node.stop()
}

// A node behind a relay: listens on RELAY/p2p-circuit (a reservation), prints "reserved" with its circuit addresses
// once it holds one, then "connection" events (relayed ones have a /p2p-circuit remote address); answers ping.
async function reserveMode ([relay]) {
  const node = await start([`${relay}/p2p-circuit`])
  node.addEventListener('connection:open', (evt) => out('connection', { ...describeConnection(evt.detail), limited: evt.detail.limits != null }))
  const reserved = () => node.getMultiaddrs().map(String).filter(a => a.includes('/p2p-circuit'))
  const deadline = Date.now() + 20000
  while (reserved().length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  if (reserved().length === 0) throw new Error('no reservation on ' + relay)
  out('reserved', { peerId: node.peerId.toString(), multiaddrs: reserved() })
  await untilStopped()
  await node.stop()
}

async function listenMode ([port, ...flags]) {
  const node = await start([`/ip4/127.0.0.1/tcp/${Number(port ?? 0)}`])
  const later = flags[flags.indexOf('--handle-after-identify') + 1]
  if (flags.includes('--handle-after-identify')) {
    node.addEventListener('peer:identify', () => {
      if (!node.getProtocols().includes(later)) {
        node.handle(later, () => {}).then(() => out('handling', { protocol: later }), (err) => out('error', { message: String(err) }))
      }
    })
  }
  node.addEventListener('connection:open', (evt) => out('connection', describeConnection(evt.detail)))
  node.addEventListener('connection:close', (evt) => out('connection-closed', { peerId: evt.detail.remotePeer.toString() }))
  node.addEventListener('peer:identify', (evt) => out('identify', describeIdentify(evt.detail)))
  out('listening', { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(String) })
  await untilStopped()
  await node.stop()
}

async function dialMode ([address, ...flags]) {
  const option = (name) => { const i = flags.indexOf(name); return i < 0 ? null : flags[i + 1] }
  const pings = Number(option('--ping') ?? 0)
  const concurrent = Number(option('--concurrent-pings') ?? 0)
  const wantIdentify = flags.includes('--identify')
  const node = await start([])
  // js-libp2p identifies every new connection by itself, and allows one outbound identify stream at a time: the explicit
  // identify below waits (up to 2 s) for that automatic one to finish, or it fails with "too many outbound streams".
  const autoIdentified = new Promise((resolve) => {
    node.addEventListener('peer:identify', resolve, { once: true })
    setTimeout(resolve, 2000)
  })
  let failed = false
  try {
    const connection = await node.dial(multiaddr(address), { signal: AbortSignal.timeout(15000) })
    out('connected', { localPeerId: node.peerId.toString(), ...describeConnection(connection) })
    for (let i = 0; i < pings; i++) {
      try {
        out('ping', { rtt: await node.services.ping.ping(connection.remotePeer, { signal: AbortSignal.timeout(10000) }) })
      } catch (err) {
        failed = true
        out('error', { message: 'ping: ' + (err?.message ?? String(err)) })
      }
    }
    if (wantIdentify) {
      await autoIdentified
      try {
        out('identify', describeIdentify(await node.services.identify.identify(connection, { signal: AbortSignal.timeout(10000) })))
      } catch (err) {
        failed = true
        out('error', { message: 'identify: ' + (err?.message ?? String(err)) })
      }
    }
    if (concurrent > 0) {
      const results = await Promise.allSettled(Array.from({ length: concurrent },
        () => node.services.ping.ping(connection.remotePeer, { signal: AbortSignal.timeout(20000) })))
      const ok = results.filter(r => r.status === 'fulfilled').length
      const errors = [...new Set(results.filter(r => r.status === 'rejected').map(r => r.reason?.message ?? String(r.reason)))]
      out('concurrent-pings', { ok, failed: concurrent - ok, connections: node.getConnections(connection.remotePeer).length, errors })
      if (ok !== concurrent) failed = true
    }
  } catch (err) {
    failed = true
    out('error', { message: 'dial: ' + (err?.message ?? String(err)) })
  }
  out('done', { ok: !failed })
  await node.stop()
  return failed ? 1 : 0
}

const [mode, ...args] = process.argv.slice(2)
try {
  if (mode === 'peerid') {
    const key = await fixedKey()
    if (!key) throw new Error('peerid needs LIBP2P_SEED')
    out('peerid', { peerId: peerIdFromPrivateKey(key).toString() })
    process.exit(0)
  } else if (mode === 'listen') {
    await listenMode(args)
    process.exit(0)
  } else if (mode === 'relay') {
    await relayMode(args)
    process.exit(0)
  } else if (mode === 'reserve' && args.length === 1) {
    await reserveMode(args)
    process.exit(0)
  } else if (mode === 'dial' && args.length >= 1) {
    process.exit(await dialMode(args))
  } else {
    process.stderr.write('usage: listen [PORT] [--handle-after-identify PROTO] | relay [PORT] | reserve RELAY_MULTIADDR | dial MULTIADDR [--ping N] [--identify] [--concurrent-pings N]\n')
    process.exit(2)
  }
} catch (err) {
  out('error', { message: err?.stack ?? String(err) })
  process.exit(1)
}
