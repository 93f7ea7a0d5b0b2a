using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Tests.Wire;

internal static class WireSamples
{
    public static readonly ContentId Id = ContentId.FromHash(Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray());

    public static byte[] Bytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static IEnumerable<WireMessage> All()
    {
        yield return new Hello(0, WireLimits.ProtocolVersion, ["search", "have", "chunk"], WireLimits.DefaultMaxMessageSize);
        yield return new Hello(1, 7, [], WireLimits.MinAnnouncedMessageSize);
        yield return new SearchRequest(2, "holiday fotos ü", 50);
        yield return new SearchRequest(uint.MaxValue, "", 1);
        yield return new SearchResponse(3, [new SearchResult(Id, "a.txt", 0), new SearchResult(Id, "b é.iso", long.MaxValue)]);
        yield return new SearchResponse(4, []);
        yield return new ManifestRequest(5, Id);
        yield return new ManifestResponse(6, Bytes(300, 6));
        yield return new HaveRequest(7, Id);
        yield return HaveResponse.ForAll(8, 102_400);
        var field = new ChunkBitfield(13);
        field.Set(0);
        field.Set(12);
        yield return HaveResponse.ForBitfield(9, field);
        yield return new ChunkRequest(10, Id, 123_456_789_012);
        yield return new ChunkResponse(11, 3, Bytes(70_000, 11), new MerkleProof(Bytes(32 * 17, 12)));
        yield return new ChunkResponse(12, 0, ReadOnlyMemory<byte>.Empty, new MerkleProof(ReadOnlyMemory<byte>.Empty));
        yield return new ErrorMessage(13, WireErrorCode.NotFound, "no such content");
        yield return new ErrorMessage(14, WireErrorCode.Changed, "");
        yield return new CancelRequest(15);
        yield return new RefusedMessage();
    }

    public static TheoryData<int> Indices()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < All().Count(); i++)
        {
            data.Add(i);
        }
        return data;
    }

    public static WireMessage Get(int index) => All().ElementAt(index);

    /// <summary>Field-wise equality, since records compare lists and memory by reference.</summary>
    public static void AssertSame(WireMessage expected, WireMessage actual)
    {
        Assert.Equal(expected.GetType(), actual.GetType());
        Assert.Equal(expected.RequestId, actual.RequestId);
        Assert.Equal(expected.Type, actual.Type);
        switch (expected)
        {
            case Hello e:
                var h = (Hello)actual;
                Assert.Equal(e.Version, h.Version);
                Assert.Equal(e.Capabilities, h.Capabilities);
                Assert.Equal(e.MaxMessageSize, h.MaxMessageSize);
                break;
            case SearchRequest e:
                Assert.Equal(e, actual);
                break;
            case SearchResponse e:
                Assert.Equal(e.Results, ((SearchResponse)actual).Results);
                break;
            case ManifestRequest or HaveRequest or ChunkRequest or ErrorMessage or CancelRequest or RefusedMessage:
                Assert.Equal(expected, actual);
                break;
            case ManifestResponse e:
                Assert.Equal(e.Manifest.ToArray(), ((ManifestResponse)actual).Manifest.ToArray());
                break;
            case HaveResponse e:
                var hr = (HaveResponse)actual;
                Assert.Equal(e.All, hr.All);
                Assert.Equal(e.ChunkCount, hr.ChunkCount);
                Assert.Equal(e.Bitfield.ToArray(), hr.Bitfield.ToArray());
                break;
            case ChunkResponse e:
                var c = (ChunkResponse)actual;
                Assert.Equal(e.Index, c.Index);
                Assert.Equal(e.Data.ToArray(), c.Data.ToArray());
                Assert.Equal(e.Proof.Hashes.ToArray(), c.Proof.Hashes.ToArray());
                break;
            default:
                Assert.Fail($"no comparison for {expected.GetType().Name}");
                break;
        }
    }
}
