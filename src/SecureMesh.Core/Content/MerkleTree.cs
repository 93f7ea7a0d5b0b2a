namespace SecureMesh.Core.Content;

/// <summary>
/// The BLAKE3 hash tree of one file, built from its leaf hashes; it serves proofs for any chunk.
/// Construction (details on MerkleHash): leaf i = <c>BLAKE3(chunk_i)</c>;
/// inner = <c>BLAKE3-keyed(K_node, left || right)</c>, the odd last node of a level promoted unchanged;
/// content root = <c>BLAKE3-keyed(K_root, u64le(fileSize) || u32le(chunkSize) || top)</c>;
/// K_node, K_root = <c>BLAKE3-derive_key("SecureMesh 2026 content tree node v1" / "SecureMesh 2026 content root v1", "")</c>;
/// content ID = <c>"b3:" + base32(root)</c>. An empty file has one empty leaf.
/// </summary>
public sealed class MerkleTree
{
    /// <summary>Length of every hash in the tree.</summary>
    public const int HashLength = MerkleHash.HashLength;

    // Level 0 holds the leaves; the last level holds the single top node. Each level is its hashes back to back.
    private readonly byte[][] _levels;

    private MerkleTree(byte[][] levels, long fileSize, int chunkSize, ContentId id)
    {
        _levels = levels;
        FileSize = fileSize;
        ChunkSize = chunkSize;
        ContentId = id;
    }

    /// <summary>Size of the file in bytes.</summary>
    public long FileSize { get; }

    /// <summary>Chunk size in bytes.</summary>
    public int ChunkSize { get; }

    /// <summary>Number of leaves (chunks).</summary>
    public int LeafCount => _levels[0].Length / HashLength;

    /// <summary>The content ID: the root over the top node, file size and chunk size.</summary>
    public ContentId ContentId { get; }

    /// <summary>The leaf hashes back to back, 32 bytes each.</summary>
    public ReadOnlyMemory<byte> LeafHashes => _levels[0];

    /// <summary>The top node of the tree (before the size and chunk size are bound in).</summary>
    public ReadOnlySpan<byte> Top => _levels[^1];

    /// <summary>Builds the tree from leaf hashes (32 bytes each, in chunk order) of a file of <paramref name="fileSize"/> bytes.</summary>
    public static MerkleTree Build(ReadOnlySpan<byte> leafHashes, long fileSize, int chunkSize)
    {
        Validate(leafHashes.Length, fileSize, chunkSize);
        return BuildOwned(leafHashes.ToArray(), fileSize, chunkSize);
    }

    /// <summary>Builds the tree on <paramref name="leafHashes"/> itself, without copying it; the caller gives up the array.</summary>
    internal static MerkleTree BuildOwned(byte[] leafHashes, long fileSize, int chunkSize)
    {
        Validate(leafHashes.Length, fileSize, chunkSize);
        var levels = new List<byte[]> { leafHashes };
        var current = leafHashes;
        while (current.Length > HashLength)
        {
            var width = current.Length / HashLength;
            var nextWidth = (width + 1) / 2;
            var next = new byte[nextWidth * HashLength];
            for (var i = 0; i < width / 2; i++)
            {
                MerkleHash.Node(
                    current.AsSpan(2 * i * HashLength, HashLength),
                    current.AsSpan(((2 * i) + 1) * HashLength, HashLength),
                    next.AsSpan(i * HashLength, HashLength));
            }
            if ((width & 1) == 1)
            {
                current.AsSpan((width - 1) * HashLength, HashLength).CopyTo(next.AsSpan((nextWidth - 1) * HashLength));
            }
            levels.Add(next);
            current = next;
        }

        Span<byte> root = stackalloc byte[HashLength];
        MerkleHash.Root(current, fileSize, chunkSize, root);
        return new MerkleTree([.. levels], fileSize, chunkSize, ContentId.FromHash(root));
    }

    private static void Validate(int leafBytes, long fileSize, int chunkSize)
    {
        if (!ChunkLayout.IsValidChunkSize(chunkSize))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"chunk size {chunkSize} is not a power of two between 16 KiB and 16 MiB");
        }
        if (fileSize < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "file size is negative");
        }
        var leafCount = ChunkLayout.ChunkCount(fileSize, chunkSize);
        if (leafCount > ChunkLayout.MaxChunkCount)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"a file of {fileSize} bytes in {chunkSize}-byte chunks has {leafCount} chunks, more than the {ChunkLayout.MaxChunkCount} a file may have");
        }
        if (leafBytes % HashLength != 0 || leafBytes / HashLength != leafCount)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"a file of {fileSize} bytes in {chunkSize}-byte chunks has {leafCount} leaves, got {leafBytes / HashLength}");
        }
    }

    /// <summary>True when <paramref name="chunk"/> is exactly chunk <paramref name="index"/> as indexed (length and leaf hash); a seeder checks this before serving.</summary>
    public bool VerifyLeaf(long index, ReadOnlySpan<byte> chunk)
    {
        if (index < 0 || index >= LeafCount || chunk.Length != ChunkLayout.ChunkLength(FileSize, ChunkSize, index))
        {
            return false;
        }
        Span<byte> leaf = stackalloc byte[HashLength];
        MerkleHash.Leaf(chunk, leaf);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(leaf, _levels[0].AsSpan((int)index * HashLength, HashLength));
    }

    /// <summary>Number of sibling hashes in the proof of chunk <paramref name="index"/>.</summary>
    public int ProofLength(long index)
    {
        CheckIndex(index);
        return MerkleHash.ProofLength(LeafCount, index);
    }

    /// <summary>Writes the proof of chunk <paramref name="index"/> (sibling hashes from the leaf up) into <paramref name="destination"/>; returns the bytes written.</summary>
    public int WriteProof(long index, Span<byte> destination)
    {
        CheckIndex(index);
        var needed = MerkleHash.ProofLength(LeafCount, index) * HashLength;
        if (destination.Length < needed)
        {
            throw new ArgumentException($"The proof needs {needed} bytes.", nameof(destination));
        }
        var written = 0;
        var position = index;
        for (var level = 0; level < _levels.Length - 1; level++)
        {
            var width = _levels[level].Length / HashLength;
            long sibling = (position & 1) == 1 ? position - 1 : position + 1;
            if (sibling < width)
            {
                _levels[level].AsSpan((int)sibling * HashLength, HashLength).CopyTo(destination[written..]);
                written += HashLength;
            }
            position >>= 1;
        }
        return written;
    }

    /// <summary>The proof of chunk <paramref name="index"/>.</summary>
    public MerkleProof GetProof(long index)
    {
        var bytes = new byte[ProofLength(index) * HashLength];
        WriteProof(index, bytes);
        return new MerkleProof(bytes);
    }

    private void CheckIndex(long index)
    {
        if (index < 0 || index >= LeafCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, $"The tree has {LeafCount} chunks.");
        }
    }
}

/// <summary>The proof of one chunk: the sibling hashes from its leaf up to the top, 32 bytes each, back to back.</summary>
/// <param name="Hashes">The sibling hashes; not validated here, <see cref="ContentVerifier"/> checks them.</param>
public readonly record struct MerkleProof(ReadOnlyMemory<byte> Hashes)
{
    /// <summary>Number of complete hashes.</summary>
    public int Count => Hashes.Length / MerkleHash.HashLength;
}
