using System.Buffers;
using BenchmarkDotNet.Attributes;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;

namespace SecureMesh.Benchmarks.Wire;

/// <summary>Encode and decode of a 1 MiB chunk response with a 17-hash proof; the decode slices rather than copies.</summary>
[MemoryDiagnoser, MinColumn]
public class WireBenchmarks
{
    private readonly ArrayBufferWriter<byte> _output = new(2 * 1024 * 1024);
    private ChunkResponse _message = null!;
    private byte[] _encoded = [];

    /// <summary>Builds the message.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var data = new byte[ChunkLayout.DefaultChunkSize];
        new Random(3).NextBytes(data);
        _message = new ChunkResponse(7, 12345, data, new MerkleProof(new byte[17 * 32]));
        _encoded = WireCodec.Encode(_message);
    }

    /// <summary>Encode into a reused buffer writer.</summary>
    [Benchmark]
    public int EncodeChunk1MiB()
    {
        _output.ResetWrittenCount();
        WireCodec.Encode(_message, _output);
        return _output.WrittenCount;
    }

    /// <summary>Decode without copying the chunk.</summary>
    [Benchmark]
    public int DecodeChunk1MiB() => ((ChunkResponse)WireCodec.Decode(_encoded.AsMemory())).Data.Length;
}
