using SecureMesh.Core.Identity;
using SecureMesh.Core.Noise;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// Fixed keys, so that every run of a target on the same bytes takes the same path (AFL++ measures stability, and a
/// crash must replay). Test-only values; nothing here is a secret.
/// </summary>
internal static class FixedKeys
{
    public static NodeIdentity InitiatorIdentity { get; } = NodeIdentity.FromSeed(Fill(0x11));

    public static NodeIdentity ResponderIdentity { get; } = NodeIdentity.FromSeed(Fill(0x22));

    /// <summary>Static X25519 keys: owned here for the life of the process (a handshake does not dispose its static key).</summary>
    public static X25519KeyPair InitiatorStatic { get; } = X25519KeyPair.FromPrivateKey(Fill(0x33));

    public static X25519KeyPair ResponderStatic { get; } = X25519KeyPair.FromPrivateKey(Fill(0x44));

    /// <summary>A fresh key pair per handshake, since the handshake takes ownership of its ephemeral key and wipes it.</summary>
    public static X25519KeyPair InitiatorEphemeral() => X25519KeyPair.FromPrivateKey(Fill(0x55));

    public static X25519KeyPair ResponderEphemeral() => X25519KeyPair.FromPrivateKey(Fill(0x66));

    private static byte[] Fill(byte start)
    {
        var key = new byte[32];
        for (var i = 0; i < key.Length; i++)
        {
            key[i] = (byte)(start + i);
        }
        return key;
    }
}
