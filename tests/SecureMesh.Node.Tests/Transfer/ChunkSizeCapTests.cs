using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Issue 14, finding 8: with <c>chunk-size 16m</c> every file of 16 MiB or more was unservable (a full chunk plus its
/// header did not fit the node's 16 MiB message cap). The node's cap is now the protocol's (the one Hello announces),
/// and the setting is checked against it.
/// </summary>
public sealed class ChunkSizeCapTests
{
    [Fact]
    public async Task A_file_over_16_MiB_shared_with_the_largest_allowed_chunk_size_is_served_byte_identical()
    {
        Assert.Equal(ChunkLayout.MaxChunkSize, NodeSettings.MaxChunkSize);
        await using var a = TransferNode.Start();
        await using var b = TransferNode.Start();
        a.Db.Config.Set(NodeSettings.ChunkSize, NodeSettings.Get(NodeSettings.ChunkSize).Normalize("16m"));
        Assert.Equal(NodeSettings.MaxChunkSize, a.Transfer.Shares.ChunkSize());
        // One full 16 MiB chunk and a short second one.
        var path = a.WriteFile("big.bin", NodeSettings.MaxChunkSize + 100_000);
        var id = await a.ShareAsync(path);
        await b.ConnectAsync(a);

        var result = await b.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(90));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
    }

    [Fact]
    public void The_largest_chunk_response_fits_the_node_message_cap()
    {
        var cap = new NodeOptions { Home = "x" }.MaxMessageSize;
        var chunk = new byte[NodeSettings.MaxChunkSize];
        // The longest header the codec can write: largest request id and index, the longest proof.
        var message = WireCodec.Encode(new ChunkResponse(uint.MaxValue, long.MaxValue, chunk, new MerkleProof(new byte[WireLimits.MaxProofHashes * 32])));
        Assert.True(message.Length <= cap, $"{message.Length} > {cap}");
        Assert.True(message.Length <= NodeSettings.MaxChunkSize + WireLimits.MaxChunkResponseOverhead);
        Assert.Equal(0, WireLimits.LargestChunkFor(ChunkLayout.MinChunkSize));
        Assert.Equal(8 * 1024 * 1024, WireLimits.LargestChunkFor(16 * 1024 * 1024));
    }

    [Theory]
    [InlineData("32m", "too large")]
    [InlineData("1g", "too large")]
    [InlineData("3m", "power of two")]
    [InlineData("8k", "power of two")]
    public void A_chunk_size_that_cannot_travel_is_refused_with_the_reason(string value, string reason)
    {
        var error = Assert.Throws<Core.SecureMeshException>(() => NodeSettings.Get(NodeSettings.ChunkSize).Normalize(value));
        Assert.Contains(reason, error.Message, StringComparison.Ordinal);
        // A value stored by something else is checked again at use.
        Assert.Equal(ChunkLayout.DefaultChunkSize, NodeSettings.ChunkSizeOrDefault("33554432"));
    }
}
