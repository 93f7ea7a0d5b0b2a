using System.Text;
using SecureMesh.Core.Wire;

namespace SecureMesh.Core.Noise;

/// <summary>
/// A minimal protobuf reader for untrusted bytes: every length is checked against what is left before
/// anything is sliced, and every failure is a <see cref="SecureMeshException"/> of kind Protocol.
/// </summary>
internal ref struct ProtobufReader
{
    public const int WireTypeVarint = 0;
    public const int WireTypeFixed64 = 1;
    public const int WireTypeLengthDelimited = 2;
    public const int WireTypeFixed32 = 5;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _data;
    private readonly string _what;
    private int _position;

    /// <summary>A reader of <paramref name="data"/>; <paramref name="what"/> names the message in errors.</summary>
    public ProtobufReader(ReadOnlySpan<byte> data, string what = "handshake payload")
    {
        _data = data;
        _what = what;
        _position = 0;
    }

    public static SecureMeshException Malformed(string reason) => Malformed("handshake payload", reason);

    public static SecureMeshException Malformed(string what, string reason) => new(SecureMeshErrorKind.Protocol, $"malformed {what}: {reason}");

    private readonly SecureMeshException Fail(string reason) => Malformed(_what, reason);

    /// <summary>Reads the next field key; false at the end of the data.</summary>
    public bool TryReadTag(out int field, out int wireType)
    {
        field = 0;
        wireType = 0;
        if (_position >= _data.Length)
        {
            return false;
        }
        var key = ReadVarint();
        var number = key >> 3;
        if (number == 0 || number > 536_870_911)
        {
            throw Fail("invalid field number");
        }
        field = (int)number;
        wireType = (int)(key & 7);
        return true;
    }

    public ulong ReadVarint()
    {
        bool complete;
        ulong value;
        int consumed;
        try
        {
            complete = Varint.TryRead64(_data[_position..], out value, out consumed);
        }
        catch (SecureMeshException e)
        {
            // Same kind, with the payload context in the message.
            throw Fail(e.Message);
        }
        if (!complete)
        {
            throw Fail("truncated varint");
        }
        _position += consumed;
        return value;
    }

    /// <summary>A fixed64 field's value (8 bytes, little-endian).</summary>
    public ulong ReadFixed64()
    {
        if (_data.Length - _position < 8)
        {
            throw Fail("field runs past the end");
        }
        var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(_data.Slice(_position, 8));
        _position += 8;
        return value;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        var length = ReadVarint();
        if (length > (ulong)(_data.Length - _position))
        {
            throw Fail("length runs past the end");
        }
        var slice = _data.Slice(_position, (int)length);
        _position += (int)length;
        return slice;
    }

    public void SkipField(int wireType)
    {
        switch (wireType)
        {
            case WireTypeVarint:
                ReadVarint();
                break;
            case WireTypeFixed64:
                Skip(8);
                break;
            case WireTypeLengthDelimited:
                ReadBytes();
                break;
            case WireTypeFixed32:
                Skip(4);
                break;
            default:
                // Groups (3, 4) are deprecated and never used by libp2p; 6 and 7 do not exist.
                throw Fail("unsupported wire type");
        }
    }

    private void Skip(int count)
    {
        if (count > _data.Length - _position)
        {
            throw Fail("field runs past the end");
        }
        _position += count;
    }

    public static string DecodeUtf8(ReadOnlySpan<byte> bytes, string what = "handshake payload")
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Malformed(what, "a string is not valid UTF-8");
        }
    }
}
