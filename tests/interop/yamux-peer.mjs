// Runs js-libp2p's yamux (@chainsafe/libp2p-yamux) over a plain TCP socket (no Noise, no multistream) against
// SecureMesh's YamuxSession, for the interop test.
//   node yamux-peer.mjs listen STREAMS BYTES        (js is the server; prints LISTENING PORT)
//   node yamux-peer.mjs dial HOST PORT STREAMS BYTES (js is the client)
// js echoes every stream the other side opens (until that side's FIN, then closes its own half), opens STREAMS
// streams of its own, sends BYTES deterministic bytes on each, half-closes and checks the echo, pings, then prints
// JS_DONE and stays until the other side ends the session. Prints ECHOED, PING, JS_DONE, CLOSED; exits non-zero on
// any failure.

import './polyfill.mjs' // Promise.withResolvers for Node 20, before libp2p is loaded

const net = await import('node:net')
const { AbstractMessageStream } = await import('@libp2p/utils')
const { yamux } = await import('@chainsafe/libp2p-yamux')

const log = Object.assign(() => {}, { trace () {}, error () {}, enabled: false })
log.newScope = () => log

/** A net.Socket as the MessageStream that a libp2p 3.x stream muxer runs over. */
class SocketMessageStream extends AbstractMessageStream {
  constructor (socket, direction) {
    super({ log, direction })
    this.socket = socket
    socket.on('data', (buf) => this.onData(buf))
    socket.on('error', (err) => this.abort(err))
    socket.once('end', () => this.onTransportClosed())
    socket.once('close', () => this.onTransportClosed())
    socket.on('drain', () => this.safeDispatchEvent('drain'))
  }

  sendData (data) {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.socket.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
  }

  sendReset () { this.socket.resetAndDestroy() }
  sendPause () { this.socket.pause() }
  sendResume () { this.socket.resume() }

  async close () {
    if (this.status !== 'open') return
    this.status = 'closing'
    await new Promise((resolve) => { this.socket.once('close', resolve); this.socket.end() })
    this.onTransportClosed()
  }
}

function pattern (seed, length) {
  const bytes = new Uint8Array(length)
  let x = (seed * 2654435761) >>> 0
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    bytes[i] = x >>> 24
  }
  return bytes
}

async function send (stream, bytes) {
  if (!stream.send(bytes)) await stream.onDrain()
}

async function echo (stream) {
  let total = 0
  for await (const chunk of stream) {
    const bytes = chunk.subarray()
    total += bytes.byteLength
    await send(stream, bytes)
  }
  await stream.close()
  console.log('ECHOED ' + total)
}

async function roundTrip (muxer, seed, length) {
  const stream = await muxer.createStream()
  const data = pattern(seed, length)
  const reading = (async () => {
    const parts = []
    let total = 0
    for await (const chunk of stream) { parts.push(chunk.subarray()); total += chunk.byteLength }
    const all = new Uint8Array(total)
    let at = 0
    for (const p of parts) { all.set(p, at); at += p.byteLength }
    return all
  })()
  for (let at = 0; at < length; at += 65536) await send(stream, data.subarray(at, Math.min(length, at + 65536)))
  await stream.close()
  const echoed = await reading
  if (echoed.byteLength !== length || !echoed.every((b, i) => b === data[i])) {
    throw new Error(`stream ${seed}: echo differs (${echoed.byteLength} of ${length} bytes)`)
  }
}

async function run (socket, direction, streams, bytes) {
  const maConn = new SocketMessageStream(socket, direction)
  const muxer = yamux({ enableKeepAlive: false })().createStreamMuxer(maConn)
  const echoes = []
  muxer.addEventListener('stream', (evt) => { echoes.push(echo(evt.detail).catch((err) => { console.error('ERROR echo ' + err); process.exit(1) })) })
  const closed = new Promise((resolve) => maConn.addEventListener('close', resolve))
  await Promise.all(Array.from({ length: streams }, (_, i) => roundTrip(muxer, i + 1, bytes)))
  console.log('PING ' + await muxer.ping())
  console.log('JS_DONE ' + streams)
  await closed
  await Promise.all(echoes)
  console.log('CLOSED ' + echoes.length)
}

const [mode, ...args] = process.argv.slice(2)
const timer = setTimeout(() => { console.error('ERROR timed out'); process.exit(2) }, 60000)
try {
  if (mode === 'listen') {
    const server = net.createServer()
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    console.log('LISTENING ' + server.address().port)
    const socket = await new Promise((resolve) => server.once('connection', resolve))
    server.close()
    await run(socket, 'inbound', Number(args[0]), Number(args[1]))
  } else if (mode === 'dial') {
    const socket = net.connect({ host: args[0], port: Number(args[1]) })
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    await run(socket, 'outbound', Number(args[2]), Number(args[3]))
  } else {
    throw new Error('usage: listen STREAMS BYTES | dial HOST PORT STREAMS BYTES')
  }
  clearTimeout(timer)
  process.exit(0)
} catch (err) {
  console.error('ERROR ' + (err?.stack ?? err))
  process.exit(1)
}
