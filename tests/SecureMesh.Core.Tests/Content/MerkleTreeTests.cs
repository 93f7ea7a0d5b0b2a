using SecureMesh.Core.Content;
using static SecureMesh.Core.Tests.Content.MerkleTestData;

namespace SecureMesh.Core.Tests.Content;

public class MerkleTreeTests
{
    public static TheoryData<int> Sizes => new()
    {
        0,                          // empty file: one empty leaf
        1,                          // one short chunk
        ChunkSize,                  // exactly one chunk
        (2 * ChunkSize),            // 2 chunks
        (2 * ChunkSize) + 1,        // 3 chunks, last of 1 byte
        (3 * ChunkSize) - 100,      // 3 chunks, last partial
        (5 * ChunkSize),            // 5
        (8 * ChunkSize),            // 8, a full binary tree
        (8 * ChunkSize) + 7,        // 9
        (1000 * ChunkSize) - 4321,  // 1000 chunks, last partial
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Tree_matches_the_reference_construction(int size)
    {
        var data = RandomData(size, size);
        var tree = BuildInMemory(data, ChunkSize);
        Assert.Equal(ReferenceId(data, ChunkSize), tree.ContentId);
        Assert.Equal(ChunkLayout.ChunkCount(size, ChunkSize), tree.LeafCount);
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Every_chunk_proof_verifies(int size)
    {
        var data = RandomData(size, size + 1);
        var tree = BuildInMemory(data, ChunkSize);
        for (var i = 0; i < tree.LeafCount; i++)
        {
            var proof = tree.GetProof(i);
            Assert.Equal(tree.ProofLength(i), proof.Count);
            Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, size, ChunkSize, i, Chunk(data, ChunkSize, i), proof), $"chunk {i}");
            // The overload a downloader uses also gives the chunk's leaf hash, the one the tree holds.
            var leaf = new byte[32];
            Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, size, ChunkSize, i, Chunk(data, ChunkSize, i), proof.Hashes.Span, leaf));
            Assert.Equal(tree.LeafHashes.Slice(i * 32, 32).ToArray(), leaf);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    [InlineData(8)]
    [InlineData(13)]
    public void Tampering_with_chunk_proof_index_or_layout_fails(int chunks)
    {
        var size = (chunks * ChunkSize) - 3;
        var data = RandomData(size, chunks);
        var tree = BuildInMemory(data, ChunkSize);
        var id = tree.ContentId;
        for (var i = 0; i < tree.LeafCount; i++)
        {
            var chunk = Chunk(data, ChunkSize, i).ToArray();
            var proof = tree.GetProof(i).Hashes.ToArray();

            var flipped = (byte[])chunk.Clone();
            flipped[chunk.Length / 2] ^= 0x01;
            Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, flipped, proof));

            for (var p = 0; p < proof.Length; p += 13)
            {
                var badProof = (byte[])proof.Clone();
                badProof[p] ^= 0x80;
                Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, chunk, badProof));
            }

            Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, chunk, [.. proof, .. new byte[32]]));
            if (proof.Length > 0)
            {
                Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, chunk, proof.AsSpan(32)));
                Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, chunk, proof.AsSpan(0, proof.Length - 1)));
            }
            Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i + 1, chunk, proof));
            Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize, i - 1, chunk, proof));
            Assert.False(ContentVerifier.VerifyChunk(id, size + 1, ChunkSize, i, chunk, proof));
            Assert.False(ContentVerifier.VerifyChunk(id, size - 1, ChunkSize, i, chunk, proof));
            Assert.False(ContentVerifier.VerifyChunk(id, size, ChunkSize * 2, i, chunk, proof));
            Assert.False(ContentVerifier.VerifyChunk(ReferenceId([1], ChunkSize), size, ChunkSize, i, chunk, proof));
            Assert.True(ContentVerifier.VerifyChunk(id, size, ChunkSize, i, chunk, proof));
        }
    }

    [Fact]
    public void Swapping_two_chunks_with_their_proofs_fails()
    {
        var data = RandomData(4 * ChunkSize, 4);
        var tree = BuildInMemory(data, ChunkSize);
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 0, Chunk(data, ChunkSize, 1), tree.GetProof(1)));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 1, Chunk(data, ChunkSize, 0), tree.GetProof(1)));
    }

    [Fact]
    public void Chunk_of_wrong_length_is_refused_before_hashing()
    {
        var data = RandomData((2 * ChunkSize) + 10, 7);
        var tree = BuildInMemory(data, ChunkSize);
        var last = Chunk(data, ChunkSize, 2).ToArray();
        var proof = tree.GetProof(2);
        Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 2, last, proof));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 2, [.. last, 0], proof));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 2, last.AsSpan(1), proof));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, 0, Chunk(data, ChunkSize, 0)[1..], tree.GetProof(0)));
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(3L)]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    public void Hostile_indices_and_layouts_return_false(long index)
    {
        var data = RandomData(3 * ChunkSize, 3);
        var tree = BuildInMemory(data, ChunkSize);
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkSize, index, Chunk(data, ChunkSize, 0), tree.GetProof(0)));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, -1, ChunkSize, 0, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, long.MaxValue, ChunkSize, index, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, 0, 0, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, 3 * 1024 * 10, 0, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, int.MinValue, 0, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(null!, data.Length, ChunkSize, 0, Chunk(data, ChunkSize, 0), tree.GetProof(0)));
    }

    [Fact]
    public void Huge_declared_file_with_short_proof_is_refused()
    {
        // A peer claiming a 2^62-byte file must still send a full-depth proof; no allocation depends on the size.
        var size = 1L << 62;
        var chunk = new byte[ChunkSize];
        Assert.False(ContentVerifier.VerifyChunk(ReferenceId([], ChunkSize), size, ChunkSize, 5, chunk, new byte[32 * 48]));
        Assert.False(ContentVerifier.VerifyChunk(ReferenceId([], ChunkSize), size, ChunkSize, 5, chunk, new byte[32 * 3]));
    }

    [Fact]
    public void Empty_file_has_one_empty_leaf_and_a_defined_root()
    {
        var tree = BuildInMemory([], ChunkSize);
        Assert.Equal(1, tree.LeafCount);
        Assert.Equal(0, tree.GetProof(0).Count);
        Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, 0, ChunkSize, 0, [], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, 0, ChunkSize, 0, [0], ReadOnlySpan<byte>.Empty));
        Assert.False(ContentVerifier.VerifyChunk(tree.ContentId, 0, ChunkSize, 1, [], ReadOnlySpan<byte>.Empty));
        Assert.Equal(ReferenceId([], ChunkSize), tree.ContentId);
    }

    [Fact]
    public void Known_answer_vectors_pin_the_construction()
    {
        // Recomputing these means the content IDs of every shared file change: only with a new "b3" version.
        Assert.Equal(EmptyFileId, BuildInMemory([], ChunkSize).ContentId.Text);
        var abc = "abc"u8.ToArray();
        Assert.Equal(AbcId, BuildInMemory(abc, ChunkSize).ContentId.Text);
        var counting = new byte[(3 * ChunkSize) + 1];
        for (var i = 0; i < counting.Length; i++)
        {
            counting[i] = (byte)(i % 251);
        }
        Assert.Equal(CountingId, BuildInMemory(counting, ChunkSize).ContentId.Text);
    }

    [Fact]
    public void Leaf_hash_is_plain_blake3_of_the_chunk()
    {
        // BLAKE3("") from the BLAKE3 specification's test vectors.
        Span<byte> leaf = stackalloc byte[32];
        MerkleHash.Leaf([], leaf);
        Assert.Equal("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262", Convert.ToHexStringLower(leaf));
    }

    [Fact]
    public void Leaf_and_node_domains_differ()
    {
        // A 64-byte chunk equal to two leaf hashes must not hash like the inner node over them.
        var left = ReferenceLeaf([1]);
        var right = ReferenceLeaf([2]);
        Span<byte> leaf = stackalloc byte[32];
        Span<byte> node = stackalloc byte[32];
        MerkleHash.Leaf([.. left, .. right], leaf);
        MerkleHash.Node(left, right, node);
        Assert.False(leaf.SequenceEqual(node));
    }

    [Fact]
    public void Build_rejects_wrong_leaf_count_and_bad_chunk_size()
    {
        Assert.Equal(SecureMeshErrorKind.InvalidInput,
            Assert.Throws<SecureMeshException>(() => MerkleTree.Build(new byte[64], ChunkSize, ChunkSize)).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput,
            Assert.Throws<SecureMeshException>(() => MerkleTree.Build(new byte[32], 1, 1000)).Kind);
        Assert.Equal(SecureMeshErrorKind.InvalidInput,
            Assert.Throws<SecureMeshException>(() => MerkleTree.Build(new byte[33], 1, ChunkSize)).Kind);
    }

    [Fact]
    public void Seeder_leaf_check_catches_changed_or_misplaced_chunks()
    {
        var data = RandomData((3 * ChunkSize) + 9, 21);
        var tree = BuildInMemory(data, ChunkSize);
        for (var i = 0; i < tree.LeafCount; i++)
        {
            Assert.True(tree.VerifyLeaf(i, Chunk(data, ChunkSize, i)));
        }
        var changed = Chunk(data, ChunkSize, 1).ToArray();
        changed[0] ^= 1;
        Assert.False(tree.VerifyLeaf(1, changed));
        Assert.False(tree.VerifyLeaf(0, Chunk(data, ChunkSize, 1)));
        Assert.False(tree.VerifyLeaf(4, []));
        Assert.False(tree.VerifyLeaf(-1, []));
    }

    [Fact]
    public void Verify_leaf_hashes_accepts_only_the_right_set()
    {
        var data = RandomData((5 * ChunkSize) + 5, 11);
        var tree = BuildInMemory(data, ChunkSize);
        var leaves = tree.LeafHashes.ToArray();
        Assert.True(ContentVerifier.VerifyLeafHashes(tree.ContentId, data.Length, ChunkSize, leaves));
        leaves[40] ^= 1;
        Assert.False(ContentVerifier.VerifyLeafHashes(tree.ContentId, data.Length, ChunkSize, leaves));
        Assert.False(ContentVerifier.VerifyLeafHashes(tree.ContentId, data.Length, ChunkSize, leaves.AsSpan(32)));
    }

    [Theory]
    [InlineData(16 * 1024, true)]
    [InlineData(1024 * 1024, true)]
    [InlineData(16 * 1024 * 1024, true)]
    [InlineData(8 * 1024, false)]
    [InlineData(32 * 1024 * 1024, false)]
    [InlineData(3 * 16 * 1024, false)]
    [InlineData(0, false)]
    [InlineData(-16384, false)]
    public void Chunk_size_must_be_a_power_of_two_in_range(int chunkSize, bool valid) =>
        Assert.Equal(valid, ChunkLayout.IsValidChunkSize(chunkSize));

    private const string EmptyFileId = "b3:z3btozhoqed2bx2aaosf54p3q7clufcqr2tgvigkwzctwqmiod6q";
    private const string AbcId = "b3:6okcemfi3hemwb3hqj4werqehs4vmaczxf3oxc4y7oynwwkw5dta";
    private const string CountingId = "b3:omv5o6ghc2l43nvqnesruk7iv4a3mlvhivsrzc3ochvz7kroatba";
}
