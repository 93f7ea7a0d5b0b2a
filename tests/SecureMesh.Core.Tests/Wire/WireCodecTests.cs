using System.Buffers;
using System.Runtime.InteropServices;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;
using static SecureMesh.Core.Tests.Wire.WireSamples;

namespace SecureMesh.Core.Tests.Wire;

public class WireCodecTests
{
    [Theory]
    [MemberData(nameof(WireSamples.Indices), MemberType = typeof(WireSamples))]
    public void Every_message_round_trips_through_both_decoders(int index)
    {
        var message = Get(index);
        var encoded = WireCodec.Encode(message);
        Assert.Equal((byte)message.Type, encoded[0]);
        AssertSame(message, WireCodec.Decode(encoded.AsSpan()));
        AssertSame(message, WireCodec.Decode(encoded.AsMemory()));
        // Encoding is deterministic.
        Assert.Equal(encoded, WireCodec.Encode(WireCodec.Decode(encoded.AsSpan())));
    }

    [Fact]
    public void Every_message_type_has_a_sample()
    {
        var covered = WireSamples.All().Select(m => m.Type).ToHashSet();
        Assert.All(Enum.GetValues<WireMessageType>(), t => Assert.Contains(t, covered));
    }

    [Fact]
    public void Encode_writes_into_a_buffer_writer_after_existing_content()
    {
        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write<byte>([0xEE, 0xEE]);
        WireCodec.Encode(new CancelRequest(300), buffer);
        Assert.Equal(new byte[] { 0xEE, 0xEE, 0x0B, 0xAC, 0x02 }, buffer.WrittenSpan.ToArray());
    }

    [Fact]
    public void Memory_decode_slices_chunk_data_without_copying()
    {
        var message = new ChunkResponse(1, 2, Bytes(100_000, 1), new MerkleProof(Bytes(64, 2)));
        var encoded = WireCodec.Encode(message);
        var decoded = (ChunkResponse)WireCodec.Decode(encoded.AsMemory());
        Assert.True(MemoryMarshal.TryGetArray(decoded.Data, out var segment));
        Assert.Same(encoded, segment.Array);
        Assert.True(MemoryMarshal.TryGetArray(decoded.Proof.Hashes, out var proofSegment));
        Assert.Same(encoded, proofSegment.Array);
    }

    [Fact]
    public void Chunk_response_carries_a_verifiable_chunk()
    {
        var data = Bytes((3 * ChunkLayout.MinChunkSize) + 5, 3);
        var tree = Content.MerkleTestData.BuildInMemory(data, ChunkLayout.MinChunkSize);
        var chunk = Content.MerkleTestData.Chunk(data, ChunkLayout.MinChunkSize, 2).ToArray();
        var encoded = WireCodec.Encode(new ChunkResponse(9, 2, chunk, tree.GetProof(2)));
        var decoded = (ChunkResponse)WireCodec.Decode(encoded.AsMemory());
        Assert.True(ContentVerifier.VerifyChunk(tree.ContentId, data.Length, ChunkLayout.MinChunkSize, decoded.Index, decoded.Data.Span, decoded.Proof));
    }

    [Fact]
    public void Have_response_converts_to_a_bitfield()
    {
        var field = new ChunkBitfield(20);
        field.Set(19);
        var decoded = (HaveResponse)WireCodec.Decode(WireCodec.Encode(HaveResponse.ForBitfield(1, field)).AsSpan());
        Assert.True(decoded.ToBitfield().IsSet(19));
        Assert.Equal(1, decoded.ToBitfield().SetCount);
        Assert.True(((HaveResponse)WireCodec.Decode(WireCodec.Encode(HaveResponse.ForAll(1, 20)).AsSpan())).ToBitfield().IsComplete);
    }

    [Fact]
    public void Encode_refuses_fields_over_their_caps()
    {
        void Refused(WireMessage m) =>
            Assert.Equal(SecureMeshErrorKind.InvalidInput, Assert.Throws<SecureMeshException>(() => WireCodec.Encode(m)).Kind);
        Refused(new SearchRequest(1, new string('q', 257), 10));
        Refused(new SearchRequest(1, "q", 0));
        Refused(new SearchRequest(1, "q", 1001));
        Refused(new SearchResponse(1, Enumerable.Repeat(new SearchResult(Id, "n", 1), 1001).ToArray()));
        Refused(new SearchResponse(1, [new SearchResult(Id, new string('n', 256), 1)]));
        Refused(new Hello(1, 1, Enumerable.Repeat("c", 33).ToArray(), WireLimits.DefaultMaxMessageSize));
        Refused(new Hello(1, 1, [new string('c', 65)], WireLimits.DefaultMaxMessageSize));
        Refused(new Hello(1, 1, [], 1000));
        Refused(new ErrorMessage(1, WireErrorCode.Busy, new string('e', 513)));
        Refused(new ErrorMessage(1, (WireErrorCode)99, "x"));
        Refused(new ChunkResponse(1, 0, new byte[ChunkLayout.MaxChunkSize + 1], default));
        Refused(new ChunkResponse(1, 0, new byte[1], new MerkleProof(new byte[33])));
        Refused(new ChunkResponse(1, 0, new byte[1], new MerkleProof(new byte[32 * 65])));
        Refused(new ChunkRequest(1, Id, -1));
        Refused(new HaveResponse(1, 10, false, new byte[1]));
        Refused(new ManifestResponse(1, new byte[Manifest.MaxEncodedLength + 1]));
    }

    [Fact]
    public void Decode_accepts_a_maximal_chunk_message()
    {
        var message = new ChunkResponse(1, long.MaxValue, new byte[ChunkLayout.MaxChunkSize], new MerkleProof(new byte[32 * WireLimits.MaxProofHashes]));
        var encoded = WireCodec.Encode(message);
        Assert.True(encoded.Length <= WireLimits.DefaultMaxMessageSize);
        Assert.Equal(long.MaxValue, ((ChunkResponse)WireCodec.Decode(encoded.AsMemory())).Index);
    }
}
