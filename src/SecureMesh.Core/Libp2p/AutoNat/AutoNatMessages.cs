using System.Buffers.Binary;
using SecureMesh.Core.Noise;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Libp2p.AutoNat;

/// <summary>DialStatus of AutoNAT v2: the outcome of the dial back.</summary>
public enum DialStatus
{
    /// <summary>Not set.</summary>
    Unused = 0,
    /// <summary>The server could not connect to the address.</summary>
    DialError = 100,
    /// <summary>Connected, but the nonce could not be delivered.</summary>
    DialBackError = 101,
    /// <summary>Connected and the nonce was delivered.</summary>
    Ok = 200,
}

/// <summary>DialResponse.ResponseStatus of AutoNAT v2.</summary>
public enum ResponseStatus
{
    /// <summary>Something else went wrong at the server.</summary>
    InternalError = 0,
    /// <summary>Rate limit, resource limit or refusal of this client.</summary>
    RequestRejected = 100,
    /// <summary>The server would dial none of the addresses.</summary>
    DialRefused = 101,
    /// <summary>A dial was made (successful or not).</summary>
    Ok = 200,
}

/// <summary>One message on <c>/libp2p/autonat/2/dial-request</c> (the <c>Message</c> oneof).</summary>
public abstract record AutoNatMessage;

/// <summary>Addresses (binary multiaddrs, in priority order) to dial back with <see cref="Nonce"/>.</summary>
public sealed record DialRequest(IReadOnlyList<byte[]> Addrs, ulong Nonce) : AutoNatMessage;

/// <summary>The outcome: which address was dialled and how it went.</summary>
public sealed record DialResponse(ResponseStatus Status, uint AddrIdx, DialStatus DialStatus) : AutoNatMessage;

/// <summary>The amplification guard: send <see cref="NumBytes"/> bytes before address <see cref="AddrIdx"/> is dialled.</summary>
public sealed record DialDataRequest(uint AddrIdx, ulong NumBytes) : AutoNatMessage;

/// <summary>Payment toward a <see cref="DialDataRequest"/>; only the length of the data counts.</summary>
public sealed record DialDataResponse(int DataLength) : AutoNatMessage;

/// <summary>
/// AutoNAT v2 (libp2p/specs autonat/autonat-v2.md), written from the spec: the protobuf messages of both streams,
/// varint-length-prefixed on the wire. Every length and count is capped before anything is allocated; a violation is a
/// <see cref="SecureMeshException"/> (Protocol), after which the stream is reset.
/// </summary>
public static class AutoNatMessages
{
    public const string DialRequestProtocol = "/libp2p/autonat/2/dial-request";
    public const string DialBackProtocol = "/libp2p/autonat/2/dial-back";

    /// <summary>Largest message on the dial-request stream (a DialDataResponse carries at most 4096 bytes of data).</summary>
    public const int MaxMessageSize = 8 * 1024;

    /// <summary>Largest message on the dial-back stream (a nonce, a status).</summary>
    public const int MaxDialBackSize = 64;

    /// <summary>Most addresses in one request.</summary>
    public const int MaxAddrs = 32;

    /// <summary>Longest address accepted.</summary>
    public const int MaxAddrLength = 1024;

    /// <summary>The spec's limit on the data of one DialDataResponse.</summary>
    public const int MaxDataChunk = 4096;

    /// <summary>Reads one dial-request-stream message; null when the stream ended cleanly first.</summary>
    public static async Task<AutoNatMessage?> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxMessageSize, What, cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : Decode(bytes);
    }

    /// <summary>Writes one dial-request-stream message with its length.</summary>
    public static async Task WriteAsync(Stream stream, AutoNatMessage message, CancellationToken cancellationToken) =>
        await LengthPrefixed.WriteAsync(stream, Encode(message), cancellationToken).ConfigureAwait(false);

    /// <summary>Reads the DialBack's nonce; null when the stream ended cleanly first.</summary>
    public static async Task<ulong?> ReadDialBackAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxDialBackSize, "AutoNAT dial-back", cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : DecodeDialBack(bytes);
    }

    public static async Task WriteDialBackAsync(Stream stream, ulong nonce, CancellationToken cancellationToken) =>
        await LengthPrefixed.WriteAsync(stream, EncodeDialBack(nonce), cancellationToken).ConfigureAwait(false);

    /// <summary>Reads the DialBackResponse's status (0 is OK); null when the stream ended first.</summary>
    public static async Task<ulong?> ReadDialBackResponseAsync(Stream stream, CancellationToken cancellationToken)
    {
        var bytes = await LengthPrefixed.ReadAsync(stream, MaxDialBackSize, "AutoNAT dial-back response", cancellationToken).ConfigureAwait(false);
        return bytes is null ? null : DecodeDialBackResponse(bytes);
    }

    public static async Task WriteDialBackResponseAsync(Stream stream, CancellationToken cancellationToken) =>
        await LengthPrefixed.WriteAsync(stream, EncodeDialBackResponse(), cancellationToken).ConfigureAwait(false);

    public static byte[] Encode(AutoNatMessage message)
    {
        var inner = new List<byte>();
        int field;
        switch (message)
        {
            case DialRequest r:
                foreach (var addr in r.Addrs)
                {
                    WriteBytes(inner, 1, addr);
                }
                WriteFixed64(inner, 2, r.Nonce);
                field = 1;
                break;
            case DialResponse r:
                WriteVarint(inner, 1, (ulong)r.Status);
                WriteVarint(inner, 2, r.AddrIdx);
                WriteVarint(inner, 3, (ulong)r.DialStatus);
                field = 2;
                break;
            case DialDataRequest r:
                WriteVarint(inner, 1, r.AddrIdx);
                WriteVarint(inner, 2, r.NumBytes);
                field = 3;
                break;
            case DialDataResponse r:
                if (r.DataLength is < 0 or > MaxDataChunk)
                {
                    throw new ArgumentOutOfRangeException(nameof(message), "at most 4096 bytes of dial data per message");
                }
                WriteBytes(inner, 1, new byte[r.DataLength]);
                field = 4;
                break;
            default:
                throw new ArgumentException("not an AutoNAT message", nameof(message));
        }
        var outer = new List<byte>();
        WriteBytes(outer, field, [.. inner]);
        return [.. outer];
    }

    public static AutoNatMessage Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length > MaxMessageSize)
        {
            throw Malformed($"longer than {MaxMessageSize} bytes");
        }
        var reader = new ProtobufReader(data, What);
        AutoNatMessage? result = null;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.WireTypeLengthDelimited || field is < 1 or > 4)
            {
                reader.SkipField(wireType);
                continue;
            }
            var body = reader.ReadBytes();
            // A oneof: the last one on the wire wins, as protobuf parsers do.
            result = field switch
            {
                1 => DecodeDialRequest(body),
                2 => DecodeDialResponse(body),
                3 => DecodeDialDataRequest(body),
                _ => DecodeDialDataResponse(body),
            };
        }
        return result ?? throw Malformed("no message in the oneof");
    }

    public static byte[] EncodeDialBack(ulong nonce)
    {
        var m = new List<byte>();
        WriteFixed64(m, 1, nonce);
        return [.. m];
    }

    public static ulong DecodeDialBack(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data, "AutoNAT dial-back");
        ulong? nonce = null;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.WireTypeFixed64)
            {
                nonce = reader.ReadFixed64();
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        return nonce ?? throw ProtobufReader.Malformed("AutoNAT dial-back", "no nonce");
    }

    /// <summary>DialBackResponse with status OK (0): proto3 leaves a zero enum out, so it is empty.</summary>
    public static byte[] EncodeDialBackResponse() => [];

    /// <summary>The DialBackResponse status; 0 is OK.</summary>
    public static ulong DecodeDialBackResponse(ReadOnlySpan<byte> data)
    {
        var reader = new ProtobufReader(data, "AutoNAT dial-back response");
        ulong status = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.WireTypeVarint)
            {
                status = reader.ReadVarint();
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        return status;
    }

    private const string What = "AutoNAT message";

    private static DialRequest DecodeDialRequest(ReadOnlySpan<byte> body)
    {
        var reader = new ProtobufReader(body, What);
        var addrs = new List<byte[]>();
        ulong nonce = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.WireTypeLengthDelimited)
            {
                var addr = reader.ReadBytes();
                if (addr.Length > MaxAddrLength)
                {
                    throw Malformed($"an address is longer than {MaxAddrLength} bytes");
                }
                if (addrs.Count >= MaxAddrs)
                {
                    throw Malformed($"more than {MaxAddrs} addresses");
                }
                addrs.Add(addr.ToArray());
            }
            else if (field == 2 && wireType == ProtobufReader.WireTypeFixed64)
            {
                nonce = reader.ReadFixed64();
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        return new DialRequest(addrs, nonce);
    }

    private static DialResponse DecodeDialResponse(ReadOnlySpan<byte> body)
    {
        var reader = new ProtobufReader(body, What);
        ulong status = 0, index = 0, dial = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType != ProtobufReader.WireTypeVarint || field is < 1 or > 3)
            {
                reader.SkipField(wireType);
                continue;
            }
            var value = reader.ReadVarint();
            switch (field)
            {
                case 1:
                    status = value;
                    break;
                case 2:
                    index = value;
                    break;
                default:
                    dial = value;
                    break;
            }
        }
        if (index > uint.MaxValue)
        {
            throw Malformed("address index out of range");
        }
        // Unknown codes stay as numbers: the client discards what it does not understand.
        return new DialResponse((ResponseStatus)Math.Min(status, int.MaxValue), (uint)index, (DialStatus)Math.Min(dial, int.MaxValue));
    }

    private static DialDataRequest DecodeDialDataRequest(ReadOnlySpan<byte> body)
    {
        var reader = new ProtobufReader(body, What);
        ulong index = 0, bytes = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (wireType == ProtobufReader.WireTypeVarint && field is 1 or 2)
            {
                var value = reader.ReadVarint();
                if (field == 1)
                {
                    index = value;
                }
                else
                {
                    bytes = value;
                }
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        if (index > uint.MaxValue)
        {
            throw Malformed("address index out of range");
        }
        return new DialDataRequest((uint)index, bytes);
    }

    private static DialDataResponse DecodeDialDataResponse(ReadOnlySpan<byte> body)
    {
        var reader = new ProtobufReader(body, What);
        var length = 0;
        while (reader.TryReadTag(out var field, out var wireType))
        {
            if (field == 1 && wireType == ProtobufReader.WireTypeLengthDelimited)
            {
                length = reader.ReadBytes().Length;
                if (length > MaxDataChunk)
                {
                    throw Malformed($"more than {MaxDataChunk} bytes of dial data in one message");
                }
            }
            else
            {
                reader.SkipField(wireType);
            }
        }
        return new DialDataResponse(length);
    }

    private static SecureMeshException Malformed(string reason) => ProtobufReader.Malformed(What, reason);

    private static void WriteTag(List<byte> output, int field, int wireType) => WriteRawVarint(output, ((ulong)field << 3) | (uint)wireType);

    private static void WriteRawVarint(List<byte> output, ulong value)
    {
        Span<byte> scratch = stackalloc byte[Varint.MaxLength64];
        output.AddRange(scratch[..Varint.Write(scratch, value)]);
    }

    private static void WriteVarint(List<byte> output, int field, ulong value)
    {
        if (value == 0)
        {
            // proto3: a zero scalar is not written.
            return;
        }
        WriteTag(output, field, ProtobufReader.WireTypeVarint);
        WriteRawVarint(output, value);
    }

    private static void WriteFixed64(List<byte> output, int field, ulong value)
    {
        WriteTag(output, field, ProtobufReader.WireTypeFixed64);
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        output.AddRange(bytes);
    }

    private static void WriteBytes(List<byte> output, int field, ReadOnlySpan<byte> value)
    {
        WriteTag(output, field, ProtobufReader.WireTypeLengthDelimited);
        WriteRawVarint(output, (ulong)value.Length);
        output.AddRange(value);
    }
}
