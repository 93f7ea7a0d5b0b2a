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

    [Fact]
    public async Task Known_leaves_are_taken_as_given_and_only_the_other_chunks_are_read_and_hashed()
    {
        const int ChunkSize = ChunkLayout.MinChunkSize;
        var data = RandomData((40 * ChunkSize) + 999, 21);
        var path = WriteFile(data);
        var reference = await FileIndexer.IndexAsync(path, ChunkSize);
        var count = reference.LeafCount;
        var known = new KnownLeaves(count);
        for (var i = 0; i < count; i++)
        {
            if (i % 3 != 0)
            {
                known.Add(i, reference.LeafHashes.Span.Slice(i * 32, 32));
            }
        }

        var progress = new List<long>();
        var tree = await FileIndexer.IndexAsync(path, ChunkSize, known, progress.Add);
        Assert.Equal(reference.ContentId, tree.ContentId);
        long unknownBytes = 0;
        for (var i = 0; i < count; i += 3)
        {
            unknownBytes += ChunkLayout.ChunkLength(data.Length, ChunkSize, i);
        }
        Assert.Equal(unknownBytes, progress[^1]);

        // A known chunk is not read: changing its bytes on disk goes unseen...
        data[(1 * ChunkSize) + 5] ^= 0x40;
        File.WriteAllBytes(path, data);
        Assert.Equal(reference.ContentId, (await FileIndexer.IndexAsync(path, ChunkSize, known)).ContentId);
        // ...while a change in a chunk that is not known is caught.
        data[(3 * ChunkSize) + 5] ^= 0x40;
        File.WriteAllBytes(path, data);
        Assert.NotEqual(reference.ContentId, (await FileIndexer.IndexAsync(path, ChunkSize, known)).ContentId);
    }

    [Fact]
    public async Task A_wrong_known_leaf_changes_the_root_and_known_leaves_for_another_chunk_count_are_refused()
    {
        const int ChunkSize = ChunkLayout.MinChunkSize;
        var data = RandomData(8 * ChunkSize, 22);
        var path = WriteFile(data);
        var reference = await FileIndexer.IndexAsync(path, ChunkSize);
        var known = new KnownLeaves(8);
        var wrong = reference.LeafHashes.Slice(2 * 32, 32).ToArray();
        wrong[0] ^= 1;
        known.Add(2, wrong);
        Assert.NotEqual(reference.ContentId, (await FileIndexer.IndexAsync(path, ChunkSize, known)).ContentId);

        var e = await Assert.ThrowsAsync<SecureMeshException>(() => FileIndexer.IndexAsync(path, ChunkSize, new KnownLeaves(9)));
        Assert.Equal(SecureMeshErrorKind.InvalidInput, e.Kind);
        Assert.Throws<ArgumentOutOfRangeException>(() => known.Add(8, wrong));
        Assert.Throws<ArgumentOutOfRangeException>(() => known.Add(-1, wrong));
        Assert.False(known.TryCopy(3, new byte[32]));
        var copy = new byte[32];
        Assert.True(known.TryCopy(2, copy));
        Assert.Equal(wrong, copy);
    }
}
