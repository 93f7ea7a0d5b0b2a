using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Tests.Content;

/// <summary>Issue 14, finding 4: one hard limit on chunks per file, enforced by the manifest decoder, the bitfields and the tree.</summary>
public sealed class ChunkCapTests
{
    [Fact]
    public void A_manifest_over_the_chunk_cap_never_decodes_or_verifies_and_one_at_the_cap_does()
    {
        using var publisher = NodeIdentity.Generate();
        var id = ContentId.FromHash(new byte[32]);
        var atCap = Manifest.Create(publisher, "a", ChunkLayout.MaxChunkCount * ChunkLayout.MinChunkSize, ChunkLayout.MinChunkSize, id, DateTimeOffset.UnixEpoch);
        Assert.Equal(ChunkLayout.MaxChunkCount, Manifest.Decode(atCap.Encoded).ChunkCount);
        Assert.True(atCap.Verify());

        var over = Manifest.Create(publisher, "a", (ChunkLayout.MaxChunkCount * ChunkLayout.MinChunkSize) + 1, ChunkLayout.MinChunkSize, id, DateTimeOffset.UnixEpoch);
        Assert.False(over.Verify());
        var e = Assert.Throws<SecureMeshException>(() => Manifest.Decode(over.Encoded));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Contains($"claims {ChunkLayout.MaxChunkCount + 1} chunks, more than the {ChunkLayout.MaxChunkCount}", e.Message, StringComparison.Ordinal);

        // The old cap: 2^26 - 1 chunks of 16 KiB, about 1 TiB.
        var old = Manifest.Create(publisher, "a", 67_108_863L * ChunkLayout.MinChunkSize, ChunkLayout.MinChunkSize, id, DateTimeOffset.UnixEpoch);
        Assert.Throws<SecureMeshException>(() => Manifest.Decode(old.Encoded));
    }

    [Fact]
    public void The_tree_and_the_bitfields_refuse_more_chunks_than_the_cap()
    {
        var size = (ChunkLayout.MaxChunkCount * ChunkLayout.MinChunkSize) + 1;
        var leaves = new byte[(ChunkLayout.MaxChunkCount + 1) * MerkleHash.HashLength];
        var e = Assert.Throws<SecureMeshException>(() => MerkleTree.Build(leaves, size, ChunkLayout.MinChunkSize));
        Assert.Contains("more than the", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ChunkBitfield(ChunkLayout.MaxChunkCount + 1));
        Assert.False(ChunkBitfield.TryFromBytes(ChunkLayout.MaxChunkCount + 1, new byte[ChunkBitfield.ByteLength(ChunkLayout.MaxChunkCount + 1)], out _));
        Assert.Equal(ChunkLayout.MaxChunkCount, new ChunkBitfield(ChunkLayout.MaxChunkCount).ChunkCount);
        Assert.True(ChunkLayout.IsWithinChunkCap(ChunkLayout.MaxChunkCount * (long)ChunkLayout.MaxChunkSize, ChunkLayout.MaxChunkSize));
    }
}
