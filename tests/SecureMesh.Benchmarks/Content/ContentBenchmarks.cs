using BenchmarkDotNet.Attributes;
using Microsoft.Win32.SafeHandles;
using SecureMesh.Core.Content;

namespace SecureMesh.Benchmarks.Content;

/// <summary>Shared temp file: random bytes, written once per process and left in the page cache.</summary>
internal static class BenchFile
{
    public static string Create(long size)
    {
        var path = Path.Combine(Path.GetTempPath(), $"securemesh-bench-{size}.bin");
        if (File.Exists(path) && new FileInfo(path).Length == size)
        {
            return path;
        }
        var buffer = new byte[1024 * 1024];
        new Random(1).NextBytes(buffer);
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        for (long done = 0; done < size; done += buffer.Length)
        {
            buffer[0]++;
            stream.Write(buffer, 0, (int)Math.Min(buffer.Length, size - done));
        }
        return path;
    }
}

/// <summary>
/// Picks the default chunk size: indexing a 512 MiB file (hashing-bound, page cache) and verifying every chunk with its
/// proof, at 256 KiB, 1 MiB and 4 MiB. MB/s = 512 / mean seconds.
/// </summary>
[MemoryDiagnoser, MinColumn, MaxColumn]
public class ChunkSizeBenchmarks
{
    private const long FileSize = 512L * 1024 * 1024;
    private string _path = "";
    private SafeFileHandle? _handle;
    private MerkleTree? _tree;
    private byte[] _data = [];
    private byte[][] _proofs = [];

    /// <summary>Chunk size under test.</summary>
    [Params(256 * 1024, 1024 * 1024, 4 * 1024 * 1024)]
    public int ChunkSize { get; set; }

    /// <summary>Writes the file and indexes it once.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _path = BenchFile.Create(FileSize);
        _handle = File.OpenHandle(_path);
        // Verification works on the first 64 MiB in memory.
        _data = new byte[64 * 1024 * 1024];
        RandomAccess.Read(_handle, _data, 0);
        var dataTree = BuildTree(_data, ChunkSize);
        _tree = dataTree;
        _proofs = new byte[dataTree.LeafCount][];
        for (var i = 0; i < dataTree.LeafCount; i++)
        {
            _proofs[i] = dataTree.GetProof(i).Hashes.ToArray();
        }
    }

    /// <summary>Closes the file.</summary>
    [GlobalCleanup]
    public void Cleanup() => _handle?.Dispose();

    /// <summary>Index 512 MiB with every core.</summary>
    [Benchmark]
    public MerkleTree Index512MiB() => FileIndexer.Index(_handle!, ChunkSize);

    /// <summary>Verify every chunk of 64 MiB (leaf hash + proof).</summary>
    [Benchmark]
    public int Verify64MiB()
    {
        var ok = 0;
        var tree = _tree!;
        for (var i = 0; i < tree.LeafCount; i++)
        {
            var chunk = _data.AsSpan(i * ChunkSize, ChunkSize);
            if (ContentVerifier.VerifyChunk(tree.ContentId, _data.Length, ChunkSize, i, chunk, _proofs[i]))
            {
                ok++;
            }
        }
        return ok;
    }

    /// <summary>Only the leaf hashes of the same 64 MiB, to separate proof cost from chunk hashing.</summary>
    [Benchmark]
    public int LeafHashOnly64MiB()
    {
        Span<byte> hash = stackalloc byte[32];
        var total = 0;
        for (var i = 0; i < _data.Length / ChunkSize; i++)
        {
            MerkleHash.Leaf(_data.AsSpan(i * ChunkSize, ChunkSize), hash);
            total += hash[0];
        }
        return total;
    }

    internal static MerkleTree BuildTree(byte[] data, int chunkSize)
    {
        var count = (int)ChunkLayout.ChunkCount(data.Length, chunkSize);
        var leaves = new byte[count * 32];
        for (var i = 0; i < count; i++)
        {
            MerkleHash.Leaf(data.AsSpan(i * chunkSize, ChunkLayout.ChunkLength(data.Length, chunkSize, i)), leaves.AsSpan(i * 32, 32));
        }
        return MerkleTree.Build(leaves, data.Length, chunkSize);
    }
}

/// <summary>Indexing speed of a 2 GiB file at the default chunk size, one thread against every core; MB/s = 2048 / mean seconds.</summary>
[MinColumn, MaxColumn]
public class IndexingBenchmarks
{
    private const long FileSize = 2L * 1024 * 1024 * 1024;
    private SafeFileHandle? _handle;
    private readonly byte[] _oneMiB = new byte[1024 * 1024];

    /// <summary>Worker threads.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Writes the file.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _handle = File.OpenHandle(BenchFile.Create(FileSize));
        new Random(2).NextBytes(_oneMiB);
    }

    /// <summary>Closes the file.</summary>
    [GlobalCleanup]
    public void Cleanup() => _handle?.Dispose();

    /// <summary>Index 2 GiB.</summary>
    [Benchmark]
    public MerkleTree Index2GiB() => FileIndexer.Index(_handle!, ChunkLayout.DefaultChunkSize, null, Threads);

    /// <summary>Raw BLAKE3 of 1 MiB (the package's one-shot), for reference.</summary>
    [Benchmark]
    public byte RawBlake3OneMiB() => Blake3.Hasher.Hash(_oneMiB).AsSpan()[0];

    /// <summary>Our leaf hash of 1 MiB (prefix byte + chunk), against the raw figure.</summary>
    [Benchmark]
    public byte LeafHashOneMiB()
    {
        Span<byte> hash = stackalloc byte[32];
        MerkleHash.Leaf(_oneMiB, hash);
        return hash[0];
    }
}
