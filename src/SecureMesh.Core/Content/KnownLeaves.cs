namespace SecureMesh.Core.Content;

/// <summary>
/// Leaf hashes already computed from the exact bytes of some chunks of a file, by chunk index. Memory grows with the
/// chunks added (32 bytes each, in 64 KiB pages allocated on first use), not with the chunk count announced.
/// Not thread-safe for writers: add under the caller's lock; concurrent readers are fine once adding has stopped.
/// </summary>
public sealed class KnownLeaves
{
    private const int LeavesPerPage = 2048;
    private readonly byte[]?[] _pages;

    /// <summary>An empty set for a file of <paramref name="chunkCount"/> chunks.</summary>
    public KnownLeaves(long chunkCount)
    {
        Known = new ChunkBitfield(chunkCount);
        _pages = new byte[]?[(chunkCount + LeavesPerPage - 1) / LeavesPerPage];
    }

    /// <summary>Which chunks have a leaf hash here.</summary>
    public ChunkBitfield Known { get; }

    /// <summary>Records the leaf hash (32 bytes) of chunk <paramref name="index"/>.</summary>
    public void Add(long index, ReadOnlySpan<byte> leaf)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Known.ChunkCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(leaf.Length, MerkleHash.HashLength, nameof(leaf));
        var page = _pages[index / LeavesPerPage] ??= new byte[LeavesPerPage * MerkleHash.HashLength];
        leaf[..MerkleHash.HashLength].CopyTo(page.AsSpan((int)(index % LeavesPerPage) * MerkleHash.HashLength));
        Known.Set(index);
    }

    /// <summary>Copies chunk <paramref name="index"/>'s leaf hash; false when it has none here.</summary>
    public bool TryCopy(long index, Span<byte> destination)
    {
        if (index < 0 || index >= Known.ChunkCount || !Known.IsSet(index))
        {
            return false;
        }
        _pages[index / LeavesPerPage]!.AsSpan((int)(index % LeavesPerPage) * MerkleHash.HashLength, MerkleHash.HashLength).CopyTo(destination);
        return true;
    }
}
