// Runs js-libp2p's own Noise handshake (@chainsafe/libp2p-noise) against SecureMesh.
//   node noise-peer.mjs dial HOST PORT EXPECTED_PEERID   (initiator; js checks the responder's Peer ID)
//   node noise-peer.mjs probe HOST PORT EXPECTED_PEERID  (initiator; handshake only, then waits for the close)
//   node noise-peer.mjs listen PORT                       (responder; PORT 0 picks one, printed as LISTENING)
// Prints LOCAL_PEER, REMOTE_PEER, RECEIVED lines; exits non-zero on any failure.
// Application messages use SecureMesh's inner framing: a 4-byte big-endian length, then the bytes.
import net from 'node:net'
import { Uint8ArrayList } from 'uint8arraylist'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { wrapCrypto } from './node_modules/@chainsafe/libp2p-noise/dist/src/crypto.js'
import { performHandshakeInitiator, performHandshakeResponder } from './node_modules/@chainsafe/libp2p-noise/dist/src/performHandshake.js'

const log = Object.assign(() => {}, { trace () {}, error () {}, enabled: false })
log.newScope = () => log

/** A 2-byte big-endian length-prefixed duplex over a socket, as the package's handshake expects. */
function framed (socket) {
  let buffered = Buffer.alloc(0)
  let ended = false
  let waiter = null
  socket.on('data', (chunk) => { buffered = Buffer.concat([buffered, chunk]); wake() })
  socket.on('end', () => { ended = true; wake() })
  socket.on('error', (err) => { ended = err; wake() })
  function wake () { if (waiter) { const w = waiter; waiter = null; w() } }
  return {
    async read () {
      for (;;) {
        if (buffered.length >= 2) {
          const len = buffered.readUInt16BE(0)
          if (buffered.length >= 2 + len) {
            const frame = buffered.subarray(2, 2 + len)
            buffered = buffered.subarray(2 + len)
            return new Uint8ArrayList(new Uint8Array(frame))
          }
        }
        if (ended) throw new Error('connection ended: ' + ended)
        await new Promise((resolve) => { waiter = resolve })
      }
    },
    async write (data) {
      const bytes = data.subarray()
      const header = Buffer.alloc(2)
      header.writeUInt16BE(bytes.length)
      await new Promise((resolve, reject) => socket.write(Buffer.concat([header, bytes]), (e) => e ? reject(e) : resolve()))
    }
  }
}

async function exchange (connection, result, outgoing) {
  // send one message
  const body = Buffer.from(outgoing, 'utf8')
  const plain = Buffer.alloc(4 + body.length)
  plain.writeUInt32BE(body.length, 0)
  body.copy(plain, 4)
  await connection.write(result.encrypt(plain))
  // receive one message (may span frames)
  let plaintext = Buffer.alloc(0)
  for (;;) {
    if (plaintext.length >= 4 && plaintext.length >= 4 + plaintext.readUInt32BE(0)) break
    const frame = await connection.read()
    plaintext = Buffer.concat([plaintext, Buffer.from(result.decrypt(frame).subarray())])
  }
  const len = plaintext.readUInt32BE(0)
  console.log('RECEIVED ' + plaintext.subarray(4, 4 + len).toString('utf8'))
}

async function main () {
  const [mode, ...args] = process.argv.slice(2)
  const privateKey = await generateKeyPair('Ed25519')
  const crypto = wrapCrypto(defaultCrypto)
  const s = defaultCrypto.generateX25519KeyPair()
  const extensions = { streamMuxers: ['/js-interop/1'], webtransportCerthashes: [] }
  console.log('LOCAL_PEER ' + peerIdFromPublicKey(privateKey.publicKey).toString())
  const init = (connection, remoteIdentityKey) => ({ log, connection, crypto, privateKey, prologue: new Uint8Array(0), s, remoteIdentityKey, extensions })
  const signal = AbortSignal.timeout(10000)

  // Initiator: connect, run js-libp2p's handshake (which checks the responder's key), report what it saw.
  async function dial ([host, port, expected]) {
    const expectedKey = peerIdFromString(expected).publicKey
    const socket = net.connect({ host, port: Number(port) })
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const connection = framed(socket)
    const result = await performHandshakeInitiator(init(connection, expectedKey), { signal })
    const remote = peerIdFromPublicKey((await import('@libp2p/crypto/keys')).publicKeyFromProtobuf(result.payload.identityKey))
    console.log('REMOTE_PEER ' + remote.toString())
    console.log('REMOTE_PROTOCOLS ' + (result.payload.extensions?.streamMuxers ?? []).join(','))
    if (remote.toString() !== expected) throw new Error('unexpected peer ' + remote.toString())
    return { socket, connection, result }
  }

  if (mode === 'dial') {
    const { socket, connection, result } = await dial(args)
    await exchange(connection, result, 'hello from js dialer')
    socket.end()
  } else if (mode === 'probe') {
    // Handshake only, then wait for the other side to close (a node refusing an untrusted peer does exactly that).
    const { socket } = await dial(args)
    await new Promise((resolve) => { socket.once('close', resolve); socket.resume() })
    console.log('CLOSED')
  } else if (mode === 'listen') {
    const server = net.createServer()
    await new Promise((resolve) => server.listen(Number(args[0] ?? 0), '127.0.0.1', resolve))
    console.log('LISTENING ' + server.address().port)
    const socket = await new Promise((resolve) => server.once('connection', resolve))
    server.close()
    const connection = framed(socket)
    const result = await performHandshakeResponder(init(connection), { signal })
    const { publicKeyFromProtobuf } = await import('@libp2p/crypto/keys')
    console.log('REMOTE_PEER ' + peerIdFromPublicKey(publicKeyFromProtobuf(result.payload.identityKey)).toString())
    console.log('REMOTE_PROTOCOLS ' + (result.payload.extensions?.streamMuxers ?? []).join(','))
    await exchange(connection, result, 'hello from js listener')
    socket.end()
  } else {
    throw new Error('usage: dial HOST PORT EXPECTED_PEERID | probe HOST PORT EXPECTED_PEERID | listen PORT')
  }
}

main().then(() => process.exit(0), (err) => { console.error('ERROR ' + (err?.stack ?? err)); process.exit(1) })
