using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Wire;

namespace SecureMesh.Fuzz.Targets;

/// <summary>
/// The application message decoder, both the copying and the slicing form. What decodes must re-encode to exactly the
/// same bytes (the schema has one encoding per message); a "decoder fault" (the decoder's safety net wrapping its own
/// bug) is a finding.
/// </summary>
internal static class WireTarget
{
    public static FuzzTarget Target { get; } = new("wire", "WireCodec.Decode: application protocol messages", Run, Seeds);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        var copied = Decode(data, null);
        var sliced = Decode(data, data.ToArray());
        if ((copied is null) != (sliced is null))
        {
            throw Expected.Finding("the copying and the slicing decoder disagree");
        }
        if (copied is null || sliced is null)
        {
            return false;
        }
        foreach (var message in (ReadOnlySpan<WireMessage>)[copied, sliced])
        {
            if (!WireCodec.Encode(message).AsSpan().SequenceEqual(data))
            {
                throw Expected.Finding($"a decoded {message.Type} re-encodes to different bytes");
            }
        }
        // What the node does next with two of the messages: expand a bitfield and parse a manifest. Not the "all" form:
        // it is sized by a count the decoder caps but the message does not bound, so the node compares that count with
        // the manifest's before expanding it (ProtocolSession.GetHaveAsync), and ChunkBitfield.All is tested alone.
        if (copied is HaveResponse { All: false } have)
        {
            var field = have.ToBitfield();
            if (field.ChunkCount != have.ChunkCount)
            {
                throw Expected.Finding("the bitfield describes a different chunk count");
            }
        }
        if (copied is ManifestResponse manifest)
        {
            ManifestTarget.Run(manifest.Manifest.Span);
        }
        return true;
    }

    private static WireMessage? Decode(ReadOnlySpan<byte> data, byte[]? copy)
    {
        try
        {
            return copy is null ? WireCodec.Decode(data) : WireCodec.Decode(copy.AsMemory());
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return null;
        }
    }

    private static IReadOnlyList<byte[]> Seeds()
    {
        var id = ContentId.FromHash(Enumerable.Range(0, 32).Select(i => (byte)(i * 7)).ToArray());
        var bitfield = new ChunkBitfield(13);
        bitfield.Set(0);
        bitfield.Set(12);
        WireMessage[] messages =
        [
            new Hello(0, WireLimits.ProtocolVersion, ["search", "have", "chunk"], WireLimits.DefaultMaxMessageSize),
            new SearchRequest(2, "holiday fotos ü", 50),
            new SearchResponse(3, [new SearchResult(id, "a.txt", 0), new SearchResult(id, "b é.iso", long.MaxValue)]),
            new ManifestRequest(5, id),
            new ManifestResponse(6, ManifestTarget.SampleManifest()),
            new HaveRequest(7, id),
            HaveResponse.ForAll(8, 102_400),
            HaveResponse.ForBitfield(9, bitfield),
            new ChunkRequest(10, id, 123_456_789_012),
            new ChunkResponse(11, 3, Enumerable.Range(0, 100).Select(i => (byte)i).ToArray(), new MerkleProof(new byte[32 * 3])),
            new ErrorMessage(13, WireErrorCode.NotFound, "no such content"),
            new CancelRequest(15),
            new RefusedMessage(),
        ];
        return [.. messages.Select(WireCodec.Encode)];
    }
}
