using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Core.Channel;

/// <summary>
/// A node's static Noise key and its signed handshake payload. Like js-libp2p and rust-libp2p, one static
/// X25519 key is made per identity and process (ephemeral keys are fresh per handshake), so the Ed25519
/// signature is computed once rather than per connection.
/// </summary>
internal sealed class LocalStaticKey : IDisposable
{
    private static readonly ConditionalWeakTable<NodeIdentity, LocalStaticKey> Cache = [];

    private readonly NoiseHandshakePayload? _signed;
    private readonly ConcurrentDictionary<string, byte[]> _payloads = new(StringComparer.Ordinal);

    private LocalStaticKey(X25519KeyPair key, NoiseHandshakePayload? signed)
    {
        Key = key;
        _signed = signed;
    }

    public X25519KeyPair Key { get; }

    /// <summary>
    /// The encoded payload with <paramref name="streamMuxers"/> as its <c>extensions.stream_muxers</c> (early muxer
    /// negotiation); the signature covers only the static key, so it is reused. A few lists at most, so they are kept.
    /// </summary>
    public byte[] PayloadWith(IReadOnlyList<string> streamMuxers)
    {
        var signed = _signed ?? throw new InvalidOperationException("a test key has a fixed payload");
        return _payloads.GetOrAdd(string.Join('\n', streamMuxers), _ => new NoiseHandshakePayload
        {
            IdentityKey = signed.IdentityKey,
            IdentitySignature = signed.IdentitySignature,
            StreamMuxers = [.. streamMuxers],
        }.Encode());
    }

    public static LocalStaticKey For(NodeIdentity identity) => Cache.GetValue(identity, Create);

    private static LocalStaticKey Create(NodeIdentity identity)
    {
        var key = X25519KeyPair.Generate();
        return new LocalStaticKey(key, NoiseHandshakePayload.Create(identity, key.PublicKey, []));
    }

    /// <summary>Test seam: a static key with no signed payload of its own (the test sends an arbitrary, e.g. badly signed, one).</summary>
    internal static LocalStaticKey CreateForTest(X25519KeyPair key) => new(key, null);

    public void Dispose() => Key.Dispose();
}
