namespace SecureMesh.Core.Content;

/// <summary>Checks chunks that arrive from peers against the content ID alone; never throws on hostile input.</summary>
public static class ContentVerifier
{
    /// <summary>
    /// Runs the hashing code once on a throwaway buffer, so that its compilation (the BLAKE3 package's vector code is
    /// compiled at first use, some tens of milliseconds) is not paid when the first chunk arrives. For a command that
    /// is about to download: call it on a worker while connecting.
    /// </summary>
    public static void WarmUp()
    {
        // Large enough for the widest vector path (16 BLAKE3 chunks of 1 KiB at once).
        var buffer = new byte[64 * 1024];
        Span<byte> hash = stackalloc byte[MerkleHash.HashLength];
        MerkleHash.Leaf(buffer, hash);
        MerkleHash.Node(hash, hash, hash);
        MerkleHash.Root(hash, buffer.Length, ChunkLayout.MinChunkSize, hash);
    }

    /// <summary>
    /// True when <paramref name="chunk"/> is chunk <paramref name="index"/> of the content <paramref name="id"/>, laid out as
    /// <paramref name="fileSize"/> bytes in <paramref name="chunkSize"/>-byte chunks, as proven by <paramref name="proof"/>
    /// (sibling hashes from the leaf up). The index range, the exact chunk length and the proof length are checked before any hashing.
    /// </summary>
    public static bool VerifyChunk(ContentId id, long fileSize, int chunkSize, long index, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> proof)
    {
        if (id is null)
        {
            return false;
        }
        Span<byte> leaf = stackalloc byte[MerkleHash.HashLength];
        return VerifyChunk(id, fileSize, chunkSize, index, chunk, proof, leaf);
    }

    /// <summary>
    /// As <see cref="VerifyChunk(ContentId, long, int, long, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>, also giving the
    /// chunk's leaf hash in <paramref name="leaf"/> (32 bytes; meaningful only when true is returned), so a downloader
    /// can check the whole file later without hashing these bytes again.
    /// </summary>
    public static bool VerifyChunk(ContentId id, long fileSize, int chunkSize, long index, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> proof, Span<byte> leaf)
    {
        if (id is null || leaf.Length < MerkleHash.HashLength)
        {
            return false;
        }
        Span<byte> root = stackalloc byte[MerkleHash.HashLength];
        return TryComputeRoot(fileSize, chunkSize, index, chunk, proof, root, leaf) && id.HashEquals(root);
    }

    /// <summary>
    /// Computes the content root that <paramref name="chunk"/> and <paramref name="proof"/> lead to, and the chunk's leaf
    /// hash, for evidence when a chunk is rejected; false (nothing written) when the index, chunk length or proof length
    /// does not fit the layout.
    /// </summary>
    public static bool TryComputeRoot(long fileSize, int chunkSize, long index, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> proof,
        Span<byte> root, Span<byte> leaf, out int leafWritten)
    {
        leafWritten = 0;
        if (leaf.Length < MerkleHash.HashLength || !TryComputeRoot(fileSize, chunkSize, index, chunk, proof, root, leaf))
        {
            return false;
        }
        leafWritten = MerkleHash.HashLength;
        return true;
    }

    /// <summary>The root <paramref name="chunk"/> and <paramref name="proof"/> lead to, and the chunk's leaf hash (both 32 bytes).</summary>
    private static bool TryComputeRoot(long fileSize, int chunkSize, long index, ReadOnlySpan<byte> chunk, ReadOnlySpan<byte> proof,
        Span<byte> root, Span<byte> leaf)
    {
        if (fileSize < 0 || !ChunkLayout.IsValidChunkSize(chunkSize) || root.Length < MerkleHash.HashLength)
        {
            return false;
        }
        var expectedLength = ChunkLayout.ChunkLength(fileSize, chunkSize, index);
        if (expectedLength < 0 || chunk.Length != expectedLength)
        {
            return false;
        }
        var leafCount = ChunkLayout.ChunkCount(fileSize, chunkSize);
        if (proof.Length != MerkleHash.ProofLength(leafCount, index) * MerkleHash.HashLength)
        {
            return false;
        }

        MerkleHash.Leaf(chunk, leaf);
        Span<byte> node = stackalloc byte[MerkleHash.HashLength];
        leaf[..MerkleHash.HashLength].CopyTo(node);
        var position = index;
        var width = leafCount;
        var used = 0;
        while (width > 1)
        {
            if ((position & 1) == 1)
            {
                MerkleHash.Node(proof.Slice(used, MerkleHash.HashLength), node, node);
                used += MerkleHash.HashLength;
            }
            else if (position + 1 < width)
            {
                MerkleHash.Node(node, proof.Slice(used, MerkleHash.HashLength), node);
                used += MerkleHash.HashLength;
            }
            position >>= 1;
            width = (width + 1) >> 1;
        }
        MerkleHash.Root(node, fileSize, chunkSize, root);
        return true;
    }

    /// <summary>Same as the span overload, with a <see cref="MerkleProof"/>.</summary>
    public static bool VerifyChunk(ContentId id, long fileSize, int chunkSize, long index, ReadOnlySpan<byte> chunk, MerkleProof proof) =>
        VerifyChunk(id, fileSize, chunkSize, index, chunk, proof.Hashes.Span);

    /// <summary>True when <paramref name="leafHashes"/> (32 bytes each, in order) rebuild to <paramref name="id"/>; for resuming from stored leaf hashes.</summary>
    public static bool VerifyLeafHashes(ContentId id, long fileSize, int chunkSize, ReadOnlySpan<byte> leafHashes)
    {
        if (id is null || fileSize < 0 || !ChunkLayout.IsValidChunkSize(chunkSize)
            || leafHashes.Length % MerkleHash.HashLength != 0
            || leafHashes.Length / MerkleHash.HashLength != ChunkLayout.ChunkCount(fileSize, chunkSize))
        {
            return false;
        }
        return MerkleTree.Build(leafHashes, fileSize, chunkSize).ContentId == id;
    }
}
