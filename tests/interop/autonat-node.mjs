// A stock js-libp2p 3.x node with @libp2p/autonat-v2 (client and server) for SecureMesh's AutoNAT interop test.
//   node autonat-node.mjs LISTEN_MULTIADDR [DIAL_MULTIADDR]   listen (and dial), run until SIGTERM
//   node autonat-node.mjs peerid                              print the Peer ID the node would have
// LIBP2P_SEED (64 hex digits) fixes the Ed25519 key, so a test can trust the node beforehand.
// Prints one JSON object per line on stdout ({"event":"listening",...}, {"event":"connection",...}); with
// DEBUG=libp2p:auto-nat-v2* the autonat client says on stderr when an address "is externally dialable".

import './polyfill.mjs' // Promise.withResolvers for Node 20, before libp2p is loaded

const { createLibp2p } = await import('libp2p')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { autoNATv2 } = await import('@libp2p/autonat-v2')
const { multiaddr } = await import('@multiformats/multiaddr')
const { generateKeyPairFromSeed } = await import('@libp2p/crypto/keys')
const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')

const out = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n')
const seed = process.env.LIBP2P_SEED
const privateKey = seed ? await generateKeyPairFromSeed('Ed25519', Uint8Array.from(Buffer.from(seed, 'hex'))) : undefined
const [listen, dial] = process.argv.slice(2)

if (listen === 'peerid') {
  out('peerid', { peerId: peerIdFromPrivateKey(privateKey).toString() })
  process.exit(0)
}

const node = await createLibp2p({
  privateKey,
  addresses: { listen: [listen] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify({ timeout: 10000 }),
    ping: ping(),
    autoNAT: autoNATv2({ startupDelay: 500, refreshInterval: 5000 })
  }
})
node.addEventListener('connection:open', (evt) => out('connection', { peerId: evt.detail.remotePeer.toString(), remoteAddr: evt.detail.remoteAddr.toString(), direction: evt.detail.direction }))
out('listening', { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
if (dial) {
  try {
    await node.dial(multiaddr(dial))
    out('dialled', { to: dial })
  } catch (err) {
    out('error', { message: String(err?.message ?? err) })
  }
}
process.on('SIGTERM', async () => {
  await node.stop()
  process.exit(0)
})
