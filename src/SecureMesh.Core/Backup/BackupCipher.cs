using System.Security.Cryptography;
using NSec.Cryptography;

namespace SecureMesh.Core.Backup;

/// <summary>What a sealed blob holds; bound into the associated data so a blob of one kind never opens as another.</summary>
public enum BlobKind : byte
{
    /// <summary>A padded chunk of a file.</summary>
    Chunk = 1,

    /// <summary>The catalog.</summary>
    Catalog = 2,

    /// <summary>The trust-store export.</summary>
    Trust = 3,
}

/// <summary>
/// Seals and opens backup blobs with XChaCha20-Poly1305 (NSec, libsodium). A sealed blob is
/// <c>version (1 byte, 1) || nonce (24 random bytes) || ciphertext || tag (16)</c>; the associated data is
/// <c>"securemesh backup v1" || kind</c>. Nonces are random: at 192 bits a repeat is not a concern for any number of
/// blobs one key will ever seal.
/// </summary>
public static class BackupCipher
{
    /// <summary>The AEAD.</summary>
    internal static readonly AeadAlgorithm Algorithm = AeadAlgorithm.XChaCha20Poly1305;

    /// <summary>The format byte in front of every blob.</summary>
    public const byte FormatVersion = 1;

    /// <summary>Bytes a sealed blob adds to its plaintext: version, nonce, tag.</summary>
    public const int Overhead = 1 + NonceLength + TagLength;

    private const int NonceLength = 24;
    private const int TagLength = 16;
    private static readonly byte[] AdPrefix = "securemesh backup v1"u8.ToArray();

    /// <summary>Seals <paramref name="plaintext"/> with the key for <paramref name="kind"/>.</summary>
    public static byte[] Seal(BackupKeys keys, BlobKind kind, ReadOnlySpan<byte> plaintext)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var blob = new byte[Overhead + plaintext.Length];
        Seal(keys, kind, plaintext, blob);
        return blob;
    }

    /// <summary>Seals into <paramref name="destination"/>, exactly <see cref="Overhead"/> bytes longer than the plaintext.</summary>
    public static void Seal(BackupKeys keys, BlobKind kind, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (destination.Length != plaintext.Length + Overhead)
        {
            throw new ArgumentException("the destination must be the plaintext's length plus the overhead", nameof(destination));
        }
        destination[0] = FormatVersion;
        var nonce = destination.Slice(1, NonceLength);
        RandomNumberGenerator.Fill(nonce);
        Span<byte> ad = stackalloc byte[AdPrefix.Length + 1];
        AdPrefix.CopyTo(ad);
        ad[^1] = (byte)kind;
        Algorithm.Encrypt(KeyFor(keys, kind), nonce, ad, plaintext, destination[(1 + NonceLength)..]);
    }

    /// <summary>The plaintext length of a sealed blob of <paramref name="blobLength"/> bytes, or -1 when too short.</summary>
    public static int PlaintextLength(int blobLength) => blobLength < Overhead ? -1 : blobLength - Overhead;

    /// <summary>
    /// Opens <paramref name="blob"/> into <paramref name="plaintext"/> (exactly <see cref="PlaintextLength"/> bytes);
    /// false for a wrong key, a wrong kind, a changed byte, a truncated blob or an unknown format. Nothing is written on false.
    /// </summary>
    public static bool TryOpen(BackupKeys keys, BlobKind kind, ReadOnlySpan<byte> blob, Span<byte> plaintext)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (blob.Length < Overhead || blob[0] != FormatVersion || plaintext.Length != blob.Length - Overhead)
        {
            return false;
        }
        Span<byte> ad = stackalloc byte[AdPrefix.Length + 1];
        AdPrefix.CopyTo(ad);
        ad[^1] = (byte)kind;
        return Algorithm.Decrypt(KeyFor(keys, kind), blob.Slice(1, NonceLength), ad, blob[(1 + NonceLength)..], plaintext);
    }

    /// <summary>Opens a blob into a new array; throws a Protocol <see cref="SecureMeshException"/> when it does not open.</summary>
    public static byte[] Open(BackupKeys keys, BlobKind kind, ReadOnlySpan<byte> blob)
    {
        var length = PlaintextLength(blob.Length);
        var plaintext = length < 0 ? [] : new byte[length];
        if (length < 0 || !TryOpen(keys, kind, blob, plaintext))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol,
                $"a backup {kind.ToString().ToLowerInvariant()} blob did not decrypt (wrong key, or altered or truncated at the holder)");
        }
        return plaintext;
    }

    private static Key KeyFor(BackupKeys keys, BlobKind kind) => kind switch
    {
        BlobKind.Chunk => keys.Content,
        BlobKind.Catalog => keys.Catalog,
        BlobKind.Trust => keys.Trust,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
