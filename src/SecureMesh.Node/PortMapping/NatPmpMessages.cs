using System.Buffers.Binary;
using System.Net;

namespace SecureMesh.Node.PortMapping;

/// <summary>
/// NAT-PMP (RFC 6886) messages, written from the RFC: the external address request (section 3.2, 2 bytes; answer 12
/// bytes) and the TCP mapping request (section 3.3, 12 bytes; answer 16 bytes). A mapping with lifetime 0 and
/// external port 0 deletes it (section 3.4).
/// </summary>
internal static class NatPmpMessages
{
    public const int OpcodeExternalAddress = 0;
    public const int OpcodeMapTcp = 2;

    public static byte[] ExternalAddressRequest() => [0, OpcodeExternalAddress];

    public static byte[] MapRequest(int internalPort, int suggestedExternalPort, uint lifetimeSeconds)
    {
        var m = new byte[12];
        m[1] = OpcodeMapTcp;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(4), checked((ushort)internalPort));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(6), checked((ushort)suggestedExternalPort));
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(8), lifetimeSeconds);
        return m;
    }

    /// <summary>The external address from an answer to <see cref="ExternalAddressRequest"/>; Error says why not.</summary>
    public static (IPAddress? Address, int ResultCode, string? Error) ParseExternalAddress(ReadOnlySpan<byte> d)
    {
        if (!Header(d, OpcodeExternalAddress, 12, out var result, out var error))
        {
            return (null, result, error);
        }
        return (new IPAddress(d.Slice(8, 4)), 0, null);
    }

    /// <summary>Parses the answer to <see cref="MapRequest"/> for <paramref name="internalPort"/>; the external address comes from the address request.</summary>
    public static MappingReply ParseMapResponse(ReadOnlySpan<byte> d, int internalPort, IPAddress external)
    {
        if (!Header(d, OpcodeMapTcp, 16, out var result, out var error))
        {
            return result > 0 ? new MappingReply(null, result, error, result == 1) : MappingReply.Drop(error!);
        }
        if (BinaryPrimitives.ReadUInt16BigEndian(d[8..]) != internalPort)
        {
            return MappingReply.Drop("the answer is for another port");
        }
        var externalPort = BinaryPrimitives.ReadUInt16BigEndian(d[10..]);
        var lifetime = BinaryPrimitives.ReadUInt32BigEndian(d[12..]);
        if (lifetime != 0 && externalPort == 0)
        {
            return MappingReply.Drop("a success without an external port");
        }
        return new MappingReply(new GrantedMapping(new IPEndPoint(external, externalPort), internalPort, TimeSpan.FromSeconds(lifetime), "NAT-PMP"), 0, null, false);
    }

    /// <summary>Checks version, opcode and size; a result code other than 0 is returned with its meaning.</summary>
    private static bool Header(ReadOnlySpan<byte> d, int opcode, int length, out int result, out string? error)
    {
        result = -1;
        if (d.Length < 4)
        {
            error = $"{d.Length} bytes, shorter than a NAT-PMP header";
            return false;
        }
        if (d[0] != 0)
        {
            error = $"NAT-PMP version {d[0]}";
            return false;
        }
        if (d[1] != 128 + opcode)
        {
            error = $"opcode {d[1]}, expected {128 + opcode}";
            return false;
        }
        var code = BinaryPrimitives.ReadUInt16BigEndian(d[2..]);
        if (code != 0)
        {
            // An error answer may be just the 8-byte header and epoch; its code is what matters.
            result = code;
            error = MappingResultCodes.NatPmp(code);
            return false;
        }
        if (d.Length != length)
        {
            error = $"{d.Length} bytes, expected {length}";
            return false;
        }
        result = 0;
        error = null;
        return true;
    }
}
