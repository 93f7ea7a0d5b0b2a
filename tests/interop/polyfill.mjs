// Node 20 lacks Promise.withResolvers, which the js-libp2p 3.x packages call. Every script here imports this module
// first (static imports are evaluated before the importing module's body), then loads libp2p with dynamic imports.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
