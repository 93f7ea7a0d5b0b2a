using System.Buffers;
using System.Text;
using System.Text.Unicode;
using SecureMesh.Core.Content;

namespace SecureMesh.Core.Wire;

/// <summary>Encodes and decodes protocol messages (schema in WireSchema.cs). Decoding hostile bytes throws only <see cref="SecureMeshException"/> (Protocol).</summary>
public static class WireCodec
{
    /// <summary>Encodes <paramref name="message"/> into <paramref name="output"/>; throws <see cref="SecureMeshException"/> (InvalidInput) when a field exceeds its cap.</summary>
    public static void Encode(WireMessage message, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(output);
        var w = new WireWriter(output);
        w.WriteByte((byte)message.Type);
        w.WriteVarUInt(message.RequestId);
        switch (message)
        {
            case Hello m:
                ArgumentNullException.ThrowIfNull(m.Capabilities);
                Check(m.Capabilities.Count <= WireLimits.MaxCapabilities, $"at most {WireLimits.MaxCapabilities} capabilities");
                Check(m.MaxMessageSize is >= WireLimits.MinAnnouncedMessageSize and <= WireLimits.MaxAnnouncedMessageSize, "max message size out of range");
                w.WriteVarUInt(m.Version);
                w.WriteVarUInt((ulong)m.Capabilities.Count);
                for (var i = 0; i < m.Capabilities.Count; i++)
                {
                    w.WriteString(m.Capabilities[i], WireLimits.MaxCapabilityBytes, "capability");
                }
                w.WriteVarUInt((ulong)m.MaxMessageSize);
                break;
            case SearchRequest m:
                Check(m.Limit is >= 1 and <= WireLimits.MaxSearchResults, $"search limit must be 1..{WireLimits.MaxSearchResults}");
                w.WriteString(m.Query, WireLimits.MaxQueryBytes, "query");
                w.WriteVarUInt((ulong)m.Limit);
                break;
            case SearchResponse m:
                ArgumentNullException.ThrowIfNull(m.Results);
                Check(m.Results.Count <= WireLimits.MaxSearchResults, $"at most {WireLimits.MaxSearchResults} search results");
                w.WriteVarUInt((ulong)m.Results.Count);
                for (var i = 0; i < m.Results.Count; i++)
                {
                    var r = m.Results[i];
                    ArgumentNullException.ThrowIfNull(r);
                    Check(r.Size >= 0, "negative size");
                    w.WriteContentId(r.ContentId);
                    w.WriteString(r.Name, WireLimits.MaxNameBytes, "name");
                    w.WriteVarUInt((ulong)r.Size);
                }
                break;
            case ManifestRequest m:
                w.WriteContentId(m.ContentId);
                break;
            case ManifestResponse m:
                Check(m.Manifest.Length <= Manifest.MaxEncodedLength, "manifest too long");
                w.WriteBytes(m.Manifest.Span);
                break;
            case HaveRequest m:
                w.WriteContentId(m.ContentId);
                break;
            case HaveResponse m:
                Check(m.ChunkCount is >= 0 and <= WireLimits.MaxHaveChunks, "chunk count out of range");
                w.WriteByte(m.All ? (byte)1 : (byte)0);
                w.WriteVarUInt((ulong)m.ChunkCount);
                if (!m.All)
                {
                    Check(m.Bitfield.Length == ChunkBitfield.ByteLength(m.ChunkCount), "bitfield length does not match the chunk count");
                    w.WriteBytes(m.Bitfield.Span);
                }
                break;
            case ChunkRequest m:
                Check(m.Index >= 0, "negative chunk index");
                w.WriteContentId(m.ContentId);
                w.WriteVarUInt((ulong)m.Index);
                break;
            case ChunkResponse m:
                Check(m.Index >= 0, "negative chunk index");
                Check(m.Data.Length <= ChunkLayout.MaxChunkSize, "chunk too large");
                Check(m.Proof.Hashes.Length % MerkleTree.HashLength == 0 && m.Proof.Count <= WireLimits.MaxProofHashes, "malformed proof");
                w.WriteVarUInt((ulong)m.Index);
                w.WriteBytes(m.Data.Span);
                w.WriteVarUInt((ulong)m.Proof.Count);
                w.WriteRaw(m.Proof.Hashes.Span);
                break;
            case ErrorMessage m:
                Check(Enum.IsDefined(m.Code), "unknown error code");
                w.WriteVarUInt((byte)m.Code);
                w.WriteString(m.Message, WireLimits.MaxErrorMessageBytes, "error message");
                break;
            case CancelRequest:
                break;
            case RefusedMessage:
                break;
            default:
                throw new ArgumentException($"Unknown message {message.GetType().Name}.", nameof(message));
        }
    }

    /// <summary>Encodes <paramref name="message"/> into a new array.</summary>
    public static byte[] Encode(WireMessage message)
    {
        var buffer = new ArrayBufferWriter<byte>();
        Encode(message, buffer);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes one message, copying byte payloads; throws <see cref="SecureMeshException"/> (Protocol) on anything malformed.</summary>
    public static WireMessage Decode(ReadOnlySpan<byte> message, int maxMessageSize = WireLimits.DefaultMaxMessageSize) =>
        DecodeCore(message, default, false, maxMessageSize);

    /// <summary>Decodes one message; byte payloads (chunk data, proofs, manifests, bitfields) are slices of <paramref name="message"/>, which must not be reused while they live.</summary>
    public static WireMessage Decode(ReadOnlyMemory<byte> message, int maxMessageSize = WireLimits.DefaultMaxMessageSize) =>
        DecodeCore(message.Span, message, true, maxMessageSize);

    private static WireMessage DecodeCore(ReadOnlySpan<byte> span, ReadOnlyMemory<byte> memory, bool slice, int maxMessageSize)
    {
        if (span.Length > maxMessageSize)
        {
            throw Protocol($"message of {span.Length} bytes exceeds the limit of {maxMessageSize}");
        }
        try
        {
            var r = new WireReader(span);
            var type = r.ReadByte("message type");
            var requestId = r.ReadVarUInt32("request id");
            WireMessage result = (WireMessageType)type switch
            {
                WireMessageType.Hello => DecodeHello(ref r, requestId),
                WireMessageType.SearchRequest => DecodeSearchRequest(ref r, requestId),
                WireMessageType.SearchResponse => DecodeSearchResponse(ref r, requestId),
                WireMessageType.ManifestRequest => new ManifestRequest(requestId, r.ReadContentId()),
                WireMessageType.ManifestResponse => new ManifestResponse(requestId,
                    Take(span, memory, slice, r.ReadBytes(Manifest.MaxEncodedLength, "manifest"))),
                WireMessageType.HaveRequest => new HaveRequest(requestId, r.ReadContentId()),
                WireMessageType.HaveResponse => DecodeHaveResponse(ref r, requestId, span, memory, slice),
                WireMessageType.ChunkRequest => new ChunkRequest(requestId, r.ReadContentId(), r.ReadVarInt63("chunk index")),
                WireMessageType.ChunkResponse => DecodeChunkResponse(ref r, requestId, span, memory, slice),
                WireMessageType.Error => DecodeError(ref r, requestId),
                WireMessageType.Cancel => new CancelRequest(requestId),
                WireMessageType.Refused => new RefusedMessage(requestId),
                _ => throw Protocol($"unknown message type 0x{type:x2}"),
            };
            r.EnsureEnd();
            return result;
        }
        catch (Exception e) when (e is not SecureMeshException)
        {
            // A decoder bug must still not let a peer raise anything but a protocol error; the type name makes it findable.
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"malformed message (decoder fault: {e.GetType().Name})", e);
        }
    }

    private static Hello DecodeHello(ref WireReader r, uint requestId)
    {
        var version = r.ReadVarUInt32("version");
        var count = r.ReadCount(WireLimits.MaxCapabilities, 1, "capability count");
        var capabilities = new string[count];
        for (var i = 0; i < count; i++)
        {
            capabilities[i] = r.ReadString(WireLimits.MaxCapabilityBytes, "capability");
        }
        var max = r.ReadVarUInt32("max message size");
        if (max is < WireLimits.MinAnnouncedMessageSize or > WireLimits.MaxAnnouncedMessageSize)
        {
            throw Protocol($"announced max message size {max} is outside {WireLimits.MinAnnouncedMessageSize}..{WireLimits.MaxAnnouncedMessageSize}");
        }
        return new Hello(requestId, version, capabilities, (int)max);
    }

    private static SearchRequest DecodeSearchRequest(ref WireReader r, uint requestId)
    {
        var query = r.ReadString(WireLimits.MaxQueryBytes, "query");
        var limit = r.ReadVarUInt32("limit");
        if (limit is < 1 or > WireLimits.MaxSearchResults)
        {
            throw Protocol($"search limit {limit} is outside 1..{WireLimits.MaxSearchResults}");
        }
        return new SearchRequest(requestId, query, (int)limit);
    }

    private static SearchResponse DecodeSearchResponse(ref WireReader r, uint requestId)
    {
        // Each result takes at least 32 + 1 + 1 bytes, so a count the message cannot hold is refused before allocating.
        var count = r.ReadCount(WireLimits.MaxSearchResults, ContentId.HashLength + 2, "result count");
        var results = new SearchResult[count];
        for (var i = 0; i < count; i++)
        {
            var id = r.ReadContentId();
            var name = r.ReadString(WireLimits.MaxNameBytes, "name");
            var size = r.ReadVarInt63("size");
            results[i] = new SearchResult(id, name, size);
        }
        return new SearchResponse(requestId, results);
    }

    private static HaveResponse DecodeHaveResponse(ref WireReader r, uint requestId, ReadOnlySpan<byte> span, ReadOnlyMemory<byte> memory, bool slice)
    {
        var kind = r.ReadByte("have kind");
        if (kind > 1)
        {
            throw Protocol($"unknown have kind {kind}");
        }
        var chunkCount = r.ReadVarInt63("chunk count");
        if (chunkCount > WireLimits.MaxHaveChunks)
        {
            throw Protocol($"chunk count {chunkCount} exceeds {WireLimits.MaxHaveChunks}");
        }
        if (kind == 1)
        {
            return HaveResponse.ForAll(requestId, chunkCount);
        }
        var expected = ChunkBitfield.ByteLength(chunkCount);
        var range = r.ReadBytes(expected, "bitfield");
        if (range.Length != expected)
        {
            throw Protocol($"bitfield of {range.Length} bytes does not match {chunkCount} chunks");
        }
        var spare = (int)((8 - (chunkCount % 8)) % 8);
        if (spare != 0 && (span[range.Start + range.Length - 1] & ((1 << spare) - 1)) != 0)
        {
            throw Protocol("bitfield has bits set past the last chunk");
        }
        return new HaveResponse(requestId, chunkCount, false, Take(span, memory, slice, range));
    }

    private static ChunkResponse DecodeChunkResponse(ref WireReader r, uint requestId, ReadOnlySpan<byte> span, ReadOnlyMemory<byte> memory, bool slice)
    {
        var index = r.ReadVarInt63("chunk index");
        var data = r.ReadBytes(ChunkLayout.MaxChunkSize, "chunk data");
        var count = r.ReadCount(WireLimits.MaxProofHashes, MerkleTree.HashLength, "proof length");
        var proof = r.ReadRaw(count * MerkleTree.HashLength, "proof");
        return new ChunkResponse(requestId, index, Take(span, memory, slice, data), new MerkleProof(Take(span, memory, slice, proof)));
    }

    private static ErrorMessage DecodeError(ref WireReader r, uint requestId)
    {
        var code = r.ReadVarUInt32("error code");
        if (code > byte.MaxValue || !Enum.IsDefined((WireErrorCode)code))
        {
            throw Protocol($"unknown error code {code}");
        }
        return new ErrorMessage(requestId, (WireErrorCode)code, r.ReadString(WireLimits.MaxErrorMessageBytes, "error message"));
    }

    private static ReadOnlyMemory<byte> Take(ReadOnlySpan<byte> span, ReadOnlyMemory<byte> memory, bool slice, WireRange range) =>
        slice ? memory.Slice(range.Start, range.Length) : span.Slice(range.Start, range.Length).ToArray();

    private static void Check(bool condition, string reason)
    {
        if (!condition)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"cannot encode message: {reason}");
        }
    }

    internal static SecureMeshException Protocol(string reason) => new(SecureMeshErrorKind.Protocol, reason);
}

internal readonly record struct WireRange(int Start, int Length);

/// <summary>Reads protocol fields from untrusted bytes; every read checks the bytes left first.</summary>
internal ref struct WireReader
{
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    public WireReader(ReadOnlySpan<byte> span)
    {
        _span = span;
        _position = 0;
    }

    public readonly int Remaining => _span.Length - _position;

    public byte ReadByte(string field)
    {
        Need(1, field);
        return _span[_position++];
    }

    public ulong ReadVarUInt64(string field)
    {
        var status = Varint.Decode(_span[_position..], Varint.MaxLength64, out var value, out var consumed);
        if (status == VarintStatus.Truncated)
        {
            // As for any other field cut short: name what was missing.
            Need(Math.Min(Remaining + 1, Varint.MaxLength64), field);
        }
        if (status != VarintStatus.Ok)
        {
            throw WireCodec.Protocol($"{field}: {Varint.Describe(status, Varint.MaxLength64)}");
        }
        _position += consumed;
        return value;
    }

    public uint ReadVarUInt32(string field)
    {
        var value = ReadVarUInt64(field);
        return value <= uint.MaxValue ? (uint)value : throw WireCodec.Protocol($"{field}: {value} exceeds 32 bits");
    }

    public long ReadVarInt63(string field)
    {
        var value = ReadVarUInt64(field);
        return value <= long.MaxValue ? (long)value : throw WireCodec.Protocol($"{field}: {value} is too large");
    }

    /// <summary>A count capped at <paramref name="max"/> whose items take at least <paramref name="minItemBytes"/> each of what is left.</summary>
    public int ReadCount(int max, int minItemBytes, string field)
    {
        var value = ReadVarUInt64(field);
        if (value > (ulong)max)
        {
            throw WireCodec.Protocol($"{field} {value} exceeds the cap of {max}");
        }
        if (value * (ulong)minItemBytes > (ulong)Remaining)
        {
            throw WireCodec.Protocol($"truncated message: {field} {value} needs more than the {Remaining} bytes left");
        }
        return (int)value;
    }

    /// <summary>A length-prefixed byte field of at most <paramref name="max"/> bytes, as a range of the input.</summary>
    public WireRange ReadBytes(int max, string field)
    {
        var length = ReadVarUInt64(field);
        if (length > (ulong)max)
        {
            throw WireCodec.Protocol($"{field} length {length} exceeds the cap of {max}");
        }
        return ReadRaw((int)length, field);
    }

    public WireRange ReadRaw(int length, string field)
    {
        Need(length, field);
        var range = new WireRange(_position, length);
        _position += length;
        return range;
    }

    public string ReadString(int maxBytes, string field)
    {
        var range = ReadBytes(maxBytes, field);
        var bytes = _span.Slice(range.Start, range.Length);
        if (!Utf8.IsValid(bytes))
        {
            throw WireCodec.Protocol($"{field} is not valid UTF-8");
        }
        return Encoding.UTF8.GetString(bytes);
    }

    public ContentId ReadContentId()
    {
        var range = ReadRaw(ContentId.HashLength, "content ID");
        return ContentId.FromHash(_span.Slice(range.Start, range.Length));
    }

    public readonly void EnsureEnd()
    {
        if (Remaining != 0)
        {
            throw WireCodec.Protocol($"{Remaining} unexpected bytes after the message body");
        }
    }

    private readonly void Need(int count, string field)
    {
        if (count > Remaining)
        {
            throw WireCodec.Protocol($"truncated message: {field} needs {count} bytes, {Remaining} left");
        }
    }
}

/// <summary>Writes protocol fields into a buffer writer.</summary>
internal readonly ref struct WireWriter
{
    private readonly IBufferWriter<byte> _output;

    public WireWriter(IBufferWriter<byte> output) => _output = output;

    public void WriteByte(byte value)
    {
        _output.GetSpan(1)[0] = value;
        _output.Advance(1);
    }

    public void WriteVarUInt(ulong value) => _output.Advance(Varint.Write(_output.GetSpan(Varint.MaxLength64), value));

    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            return;
        }
        bytes.CopyTo(_output.GetSpan(bytes.Length));
        _output.Advance(bytes.Length);
    }

    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        WriteVarUInt((ulong)bytes.Length);
        WriteRaw(bytes);
    }

    public void WriteString(string value, int maxBytes, string field)
    {
        ArgumentNullException.ThrowIfNull(value, field);
        var count = Encoding.UTF8.GetByteCount(value);
        if (count > maxBytes)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"cannot encode message: {field} is {count} UTF-8 bytes, the cap is {maxBytes}");
        }
        WriteVarUInt((ulong)count);
        if (count > 0)
        {
            var written = Encoding.UTF8.GetBytes(value, _output.GetSpan(count));
            _output.Advance(written);
        }
    }

    public void WriteContentId(ContentId id)
    {
        ArgumentNullException.ThrowIfNull(id);
        WriteRaw(id.Hash);
    }
}
