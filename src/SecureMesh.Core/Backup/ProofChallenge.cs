using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SecureMesh.Core.Backup;

/// <summary>
/// A proof-of-storage challenge, made by the owner while it still has the sealed blob and kept until used: a fresh
/// 32-byte nonce, a byte range of the blob, and the expected answer, BLAKE3 keyed with the nonce over
/// <c>offset (8 bytes LE) || length (4 bytes LE) || the bytes of the range</c>. The holder learns the nonce only when
/// asked, so it cannot answer without holding the bytes; each challenge is used once.
/// </summary>
public sealed record ProofChallenge(byte[] Nonce, int Offset, int Length, byte[] Expected)
{
    /// <summary>Bytes of the nonce and of an answer.</summary>
    public const int HashLength = 32;

    /// <summary>Bytes one challenge takes when packed.</summary>
    public const int PackedLength = HashLength + 4 + 4 + HashLength;

    /// <summary>
    /// Largest range asked for: a whole sealed chunk, so a proof covers every byte of a chunk blob (any damage fails it);
    /// a larger blob (a big trust-store export) is challenged on a random window of this size.
    /// </summary>
    public const int MaxRange = ChunkPadding.MaxSealedChunk;

    /// <summary>Makes a challenge over all of <paramref name="blob"/>, or a random window of <see cref="MaxRange"/> bytes of a larger one.</summary>
    public static ProofChallenge Create(ReadOnlySpan<byte> blob)
    {
        if (blob.IsEmpty)
        {
            throw new ArgumentException("an empty blob cannot be challenged", nameof(blob));
        }
        var nonce = RandomNumberGenerator.GetBytes(HashLength);
        var length = Math.Min(MaxRange, blob.Length);
        var offset = RandomNumberGenerator.GetInt32(0, blob.Length - length + 1);
        var expected = new byte[HashLength];
        Answer(nonce, offset, blob.Slice(offset, length), expected);
        return new ProofChallenge(nonce, offset, length, expected);
    }

    /// <summary>The answer to a challenge given the range's bytes (what the holder computes).</summary>
    public static void Answer(ReadOnlySpan<byte> nonce, long offset, ReadOnlySpan<byte> range, Span<byte> answer)
    {
        if (nonce.Length != HashLength || answer.Length != HashLength)
        {
            throw new ArgumentException("nonce and answer are 32 bytes");
        }
        using var hasher = Blake3.Hasher.NewKeyed(nonce);
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteInt64LittleEndian(header, offset);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], range.Length);
        hasher.Update(header);
        hasher.Update(range);
        hasher.Finalize(answer);
    }

    /// <summary>True when <paramref name="answer"/> is the expected one (constant time).</summary>
    public bool Check(ReadOnlySpan<byte> answer) => CryptographicOperations.FixedTimeEquals(answer, Expected);

    /// <summary>Packs challenges for storage.</summary>
    public static byte[] Pack(IReadOnlyList<ProofChallenge> challenges)
    {
        ArgumentNullException.ThrowIfNull(challenges);
        var packed = new byte[challenges.Count * PackedLength];
        for (var i = 0; i < challenges.Count; i++)
        {
            var slot = packed.AsSpan(i * PackedLength, PackedLength);
            challenges[i].Nonce.CopyTo(slot);
            BinaryPrimitives.WriteInt32LittleEndian(slot[HashLength..], challenges[i].Offset);
            BinaryPrimitives.WriteInt32LittleEndian(slot[(HashLength + 4)..], challenges[i].Length);
            challenges[i].Expected.CopyTo(slot[(HashLength + 8)..]);
        }
        return packed;
    }

    /// <summary>Unpacks what <see cref="Pack"/> wrote; a damaged value gives the whole challenges it holds.</summary>
    public static List<ProofChallenge> Unpack(ReadOnlySpan<byte> packed)
    {
        var list = new List<ProofChallenge>(packed.Length / PackedLength);
        for (var at = 0; at + PackedLength <= packed.Length; at += PackedLength)
        {
            var slot = packed.Slice(at, PackedLength);
            list.Add(new ProofChallenge(slot[..HashLength].ToArray(), BinaryPrimitives.ReadInt32LittleEndian(slot[HashLength..]),
                BinaryPrimitives.ReadInt32LittleEndian(slot[(HashLength + 4)..]), slot[(HashLength + 8)..].ToArray()));
        }
        return list;
    }
}
