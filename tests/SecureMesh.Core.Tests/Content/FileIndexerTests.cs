using SecureMesh.Core.Content;
using static SecureMesh.Core.Tests.Content.MerkleTestData;

namespace SecureMesh.Core.Tests.Content;

public sealed class FileIndexerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("securemesh-indexer-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteFile(byte[] data)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        File.WriteAllBytes(path, data);
        return path;
    }

    [Theory]
    [InlineData(ChunkLayout.MinChunkSize)]
    [InlineData(64 * 1024)]
    [InlineData(ChunkLayout.DefaultChunkSize)]
    [InlineData(4 * 1024 * 1024)]
    public async Task Indexing_an_odd_sized_file_matches_the_in_memory_tree(int chunkSize)
    {
        var data = RandomData((5 * 1024 * 1024) + 12_345, chunkSize);
        var path = WriteFile(data);
        var progress = new List<long>();
        var tree = await FileIndexer.IndexAsync(path, chunkSize, progress.Add);

        Assert.Equal(ReferenceId(data, chunkSize), tree.ContentId);
        Assert.Equal(data.Length, tree.FileSize);
        Assert.Equal(chunkSize, tree.ChunkSize);
        Assert.Equal(data.Length, progress[^1]);
        for (var i = 1; i < progress.Count; i++)
        {
            Assert.True(progress[i] > progress[i - 1]);
        }
        for (var i = 0; i < tree.LeafCount; i++)
        {
            Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, chunkSize, i, Chunk(data, chunkSize, i), tree.GetProof(i)));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    public void Any_degree_of_parallelism_gives_the_same_tree(int threads)
    {
        var data = RandomData((3 * 1024 * 1024) + 1, 5);
        var path = WriteFile(data);
        using var handle = File.OpenHandle(path);
        var tree = FileIndexer.Index(handle, ChunkLayout.MinChunkSize, null, threads);
        Assert.Equal(ReferenceId(data, ChunkLayout.MinChunkSize), tree.ContentId);
    }

    [Fact]
    public async Task Empty_file_indexes_to_the_empty_root()
    {
        var path = WriteFile([]);
        var tree = await FileIndexer.IndexAsync(path);
        Assert.Equal(ReferenceId([], ChunkLayout.DefaultChunkSize), tree.ContentId);
        Assert.Equal(1, tree.LeafCount);
    }

    [Fact]
    public async Task Cancellation_stops_indexing()
    {
        var path = WriteFile(RandomData(4 * 1024 * 1024, 9));
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            FileIndexer.IndexAsync(path, ChunkLayout.MinChunkSize, done => cts.Cancel(), cts.Token));
    }

    [Fact]
    public void File_shrinking_while_indexed_is_a_storage_error()
    {
        var path = WriteFile(RandomData(12 * 1024 * 1024, 13));
        using var handle = File.OpenHandle(path);
        var e = Assert.Throws<SecureMeshException>(() => FileIndexer.Index(handle, ChunkLayout.MinChunkSize,
            done => { using var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite); f.SetLength(done); }, 1));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        Assert.Contains("shrank", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void File_growing_while_indexed_is_a_storage_error()
    {
        var path = WriteFile(RandomData(6 * 1024 * 1024, 14));
        using var handle = File.OpenHandle(path);
        var e = Assert.Throws<SecureMeshException>(() => FileIndexer.Index(handle, ChunkLayout.MinChunkSize,
            done => { using var f = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite); f.WriteByte(1); }, 1));
        Assert.Equal(SecureMeshErrorKind.Storage, e.Kind);
        Assert.Contains("changed size", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_file_and_bad_chunk_size_are_clear_errors()
    {
        var missing = await Assert.ThrowsAsync<SecureMeshException>(() => FileIndexer.IndexAsync(Path.Combine(_dir, "nope")));
        Assert.Equal(SecureMeshErrorKind.Storage, missing.Kind);
        var path = WriteFile([1, 2, 3]);
        var bad = await Assert.ThrowsAsync<SecureMeshException>(() => FileIndexer.IndexAsync(path, 1000));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, bad.Kind);
    }
}
