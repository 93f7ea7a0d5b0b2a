using System.Buffers.Binary;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Channel;

/// <summary>
/// The last few remote Noise static keys whose identity signature verified, each with the exact identity key and
/// signature that were checked and the Peer ID they gave. libp2p implementations keep one static key per process (ours:
/// <see cref="LocalStaticKey"/>; js-libp2p and rust-libp2p too), so a peer that connects again presents the same three
/// byte strings, and checking them again (an Ed25519 verification, ~60 µs: about a tenth of a handshake's CPU for both
/// ends) could not give another answer: a hit needs all three equal, byte for byte, to a triple that verified. The
/// handshake itself still proves possession of the static key every time (the es and se agreements). Direct-mapped by
/// the static key: bounded memory (<see cref="Slots"/> entries), and a collision only costs a verification.
/// </summary>
internal static class VerifiedStaticKeys
{
    /// <summary>Entries kept at most (~64 KB when all are used).</summary>
    internal const int Slots = 256;

    private static readonly Entry?[] Table = new Entry?[Slots];

    /// <summary>The Peer ID of a triple that verified before; null when it is not remembered (then verify it).</summary>
    public static PeerId? Find(ReadOnlySpan<byte> staticKey, ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> signature)
    {
        var entry = Volatile.Read(ref Table[SlotOf(staticKey)]);
        return entry is not null
            && entry.StaticKey.AsSpan().SequenceEqual(staticKey)
            && entry.IdentityKey.AsSpan().SequenceEqual(identityKey)
            && entry.Signature.AsSpan().SequenceEqual(signature)
            ? entry.Peer
            : null;
    }

    /// <summary>Remembers a triple that has just verified (only then), replacing whatever shared its slot.</summary>
    public static void Remember(ReadOnlySpan<byte> staticKey, ReadOnlySpan<byte> identityKey, ReadOnlySpan<byte> signature, PeerId peer) =>
        Volatile.Write(ref Table[SlotOf(staticKey)], new Entry(staticKey.ToArray(), identityKey.ToArray(), signature.ToArray(), peer));

    private static int SlotOf(ReadOnlySpan<byte> staticKey) =>
        staticKey.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(staticKey) % Slots : 0;

    private sealed record Entry(byte[] StaticKey, byte[] IdentityKey, byte[] Signature, PeerId Peer);
}
