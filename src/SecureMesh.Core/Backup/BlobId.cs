using System.Diagnostics.CodeAnalysis;

namespace SecureMesh.Core.Backup;

/// <summary>A blob's address at a holder: the BLAKE3 hash of its ciphertext (32 bytes; 64 lowercase hex characters as text).</summary>
public readonly record struct BlobId
{
    /// <summary>Bytes in an ID.</summary>
    public const int Length = 32;

    private readonly byte[] _bytes;

    private BlobId(byte[] bytes) => _bytes = bytes;

    /// <summary>The 32 bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The ID of <paramref name="ciphertext"/>.</summary>
    public static BlobId Of(ReadOnlySpan<byte> ciphertext)
    {
        var hash = new byte[Length];
        Blake3.Hasher.Hash(ciphertext, hash);
        return new BlobId(hash);
    }

    /// <summary>An ID from its 32 bytes.</summary>
    public static BlobId FromBytes(ReadOnlySpan<byte> bytes) =>
        bytes.Length == Length ? new BlobId(bytes.ToArray()) : throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a blob ID is 32 bytes");

    /// <summary>Parses 64 lowercase hex characters.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out BlobId? id)
    {
        id = null;
        if (text is null || text.Length != Length * 2 || text.Any(c => c is not (>= '0' and <= '9' or >= 'a' and <= 'f')))
        {
            return false;
        }
        id = new BlobId(Convert.FromHexString(text));
        return true;
    }

    /// <summary>Parses, or throws InvalidInput.</summary>
    public static BlobId Parse(string text) =>
        TryParse(text, out var id) ? id.Value : throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "not a blob ID (64 lowercase hex characters)");

    /// <summary>True when <paramref name="ciphertext"/> hashes to this ID.</summary>
    public bool Matches(ReadOnlySpan<byte> ciphertext)
    {
        Span<byte> hash = stackalloc byte[Length];
        Blake3.Hasher.Hash(ciphertext, hash);
        return hash.SequenceEqual(_bytes);
    }

    /// <inheritdoc/>
    public bool Equals(BlobId other) => Bytes.SequenceEqual(other.Bytes);

    /// <inheritdoc/>
    public override int GetHashCode() => _bytes is null ? 0 : BitConverter.ToInt32(_bytes, 0);

    /// <summary>The hex text.</summary>
    public override string ToString() => _bytes is null ? string.Empty : Convert.ToHexStringLower(_bytes);
}
