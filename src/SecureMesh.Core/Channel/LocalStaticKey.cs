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

    private LocalStaticKey(X25519KeyPair key, byte[] payload)
    {
        Key = key;
        Payload = payload;
    }

    public X25519KeyPair Key { get; }

    /// <summary>The encoded <c>NoiseHandshakePayload</c> we send.</summary>
    public byte[] Payload { get; }

    public static LocalStaticKey For(NodeIdentity identity) => Cache.GetValue(identity, Create);

    private static LocalStaticKey Create(NodeIdentity identity)
    {
        var key = X25519KeyPair.Generate();
        var payload = NoiseHandshakePayload.Create(identity, key.PublicKey, [SecureChannel.ProtocolId]).Encode();
        return new LocalStaticKey(key, payload);
    }

    /// <summary>Test seam: a static key with an arbitrary (e.g. badly signed) payload.</summary>
    internal static LocalStaticKey CreateForTest(X25519KeyPair key, byte[] payload) => new(key, payload);

    public void Dispose() => Key.Dispose();
}
