using System.Buffers.Binary;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>The yamux frame types (the second header byte).</summary>
public enum YamuxFrameType : byte
{
    /// <summary>Stream data; the length counts the bytes after the header.</summary>
    Data = 0,
    /// <summary>Adds the length to the sender's window of a stream (or opens/closes it with flags).</summary>
    WindowUpdate = 1,
    /// <summary>Session ping (SYN) or its answer (ACK); the length is an opaque value echoed back.</summary>
    Ping = 2,
    /// <summary>The session is ending; the length is a <see cref="YamuxGoAwayCode"/>.</summary>
    GoAway = 3,
}

/// <summary>The yamux header flags.</summary>
[Flags]
public enum YamuxFlags : ushort
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>Opens a stream; on a ping, asks for an answer.</summary>
    Syn = 0x1,
    /// <summary>Accepts a stream; on a ping, is the answer.</summary>
    Ack = 0x2,
    /// <summary>The sender will send no more data on the stream (half-close).</summary>
    Fin = 0x4,
    /// <summary>The stream is aborted in both directions.</summary>
    Rst = 0x8,
}

/// <summary>The error codes a go-away frame carries.</summary>
public enum YamuxGoAwayCode : uint
{
    /// <summary>Normal termination.</summary>
    Normal = 0,
    /// <summary>The other side broke the protocol.</summary>
    ProtocolError = 1,
    /// <summary>The sender failed internally.</summary>
    InternalError = 2,
}

/// <summary>
/// The 12-byte yamux header: version (0), type, flags (u16), stream ID (u32), length (u32), all big-endian.
/// <see cref="Read"/> applies every check that needs no session state.
/// </summary>
internal readonly record struct YamuxHeader(YamuxFrameType Type, YamuxFlags Flags, uint StreamId, uint Length)
{
    public const int Size = 12;
    public const byte Version = 0;

    public void Write(Span<byte> destination)
    {
        destination[0] = Version;
        destination[1] = (byte)Type;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)Flags);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], StreamId);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], Length);
    }

    /// <summary>Parses the first 12 bytes of <paramref name="source"/>.</summary>
    /// <exception cref="SecureMeshException">Kind Protocol: a version other than 0, an unknown type, a session frame on a
    /// stream or a stream frame on the session ID.</exception>
    public static YamuxHeader Read(ReadOnlySpan<byte> source)
    {
        if (source.Length < Size)
        {
            throw new ArgumentException("a yamux header is 12 bytes", nameof(source));
        }
        if (source[0] != Version)
        {
            throw Protocol($"unsupported version {source[0]}");
        }
        if (source[1] > (byte)YamuxFrameType.GoAway)
        {
            throw Protocol($"unknown frame type {source[1]}");
        }
        var type = (YamuxFrameType)source[1];
        // Unknown flag bits are ignored, as the spec defines no others and other implementations do the same.
        var flags = (YamuxFlags)(BinaryPrimitives.ReadUInt16BigEndian(source[2..]) & 0xF);
        var streamId = BinaryPrimitives.ReadUInt32BigEndian(source[4..]);
        var length = BinaryPrimitives.ReadUInt32BigEndian(source[8..]);
        var sessionFrame = type is YamuxFrameType.Ping or YamuxFrameType.GoAway;
        if (sessionFrame && streamId != 0)
        {
            throw Protocol($"{type} frame on stream {streamId}");
        }
        if (!sessionFrame && streamId == 0)
        {
            throw Protocol($"{type} frame on the session ID 0");
        }
        return new YamuxHeader(type, flags, streamId, length);
    }

    internal static SecureMeshException Protocol(string reason) => new(SecureMeshErrorKind.Protocol, "yamux protocol error: " + reason);

    public override string ToString() => $"{Type} [{Flags}] stream {StreamId} length {Length}";
}
