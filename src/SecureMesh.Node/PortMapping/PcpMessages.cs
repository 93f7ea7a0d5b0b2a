using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace SecureMesh.Node.PortMapping;

/// <summary>The result codes of PCP (RFC 6887 section 7.4) and NAT-PMP (RFC 6886 section 3.5), with what each means.</summary>
internal static class MappingResultCodes
{
    public static string Pcp(int code) => code switch
    {
        0 => "success",
        1 => "unsupported version",
        2 => "not authorized",
        3 => "malformed request",
        4 => "unsupported opcode",
        5 => "unsupported option",
        6 => "malformed option",
        7 => "network failure",
        8 => "no resources",
        9 => "unsupported protocol",
        10 => "user exceeded quota",
        11 => "cannot provide external address",
        12 => "address mismatch",
        13 => "excessive remote peers",
        _ => $"unknown result code {code}",
    };

    public static string NatPmp(int code) => code switch
    {
        0 => "success",
        1 => "unsupported version",
        2 => "not authorized or refused",
        3 => "network failure",
        4 => "out of resources",
        5 => "unsupported opcode",
        _ => $"unknown result code {code}",
    };
}

/// <summary>A mapping the gateway granted: the external address and port, and for how long.</summary>
internal sealed record GrantedMapping(IPEndPoint External, int InternalPort, TimeSpan Lifetime, string Protocol);

/// <summary>A gateway's answer, parsed: a grant, a refusal with its result code, or a reason the datagram was dropped.</summary>
internal readonly record struct MappingReply(GrantedMapping? Granted, int ResultCode, string? Error, bool UnsupportedVersion)
{
    public static MappingReply Drop(string why) => new(null, -1, why, false);
}

/// <summary>
/// PCP (RFC 6887) MAP requests and responses for one TCP port, written from the RFC: a 24-byte common header and the
/// 36-byte MAP opcode body (section 11.1), no options. Responses are checked field by field before anything is used.
/// </summary>
internal static class PcpMessages
{
    public const int Port = 5351;
    public const int Version = 2;
    public const int OpcodeMap = 1;
    public const int ProtocolTcp = 6;
    public const int MapLength = 60;
    /// <summary>Largest PCP message (section 7): a datagram above it is malformed.</summary>
    public const int MaxLength = 1100;

    /// <summary>A MAP request for <paramref name="internalPort"/> (TCP) from <paramref name="client"/>; lifetime 0 deletes the mapping.</summary>
    public static byte[] MapRequest(ReadOnlySpan<byte> nonce, IPAddress client, int internalPort, int suggestedExternalPort, IPAddress? suggestedExternal, uint lifetimeSeconds)
    {
        if (nonce.Length != 12)
        {
            throw new ArgumentException("a PCP mapping nonce is 12 bytes", nameof(nonce));
        }
        var m = new byte[MapLength];
        m[0] = Version;
        m[1] = OpcodeMap; // R bit clear: a request
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), lifetimeSeconds);
        WriteAddress(m.AsSpan(8, 16), client);
        nonce.CopyTo(m.AsSpan(24, 12));
        m[36] = ProtocolTcp;
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(40), checked((ushort)internalPort));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(42), checked((ushort)suggestedExternalPort));
        // No preference for the external address: the all-zero IPv4 address in its IPv4-mapped form (section 11.1).
        WriteAddress(m.AsSpan(44, 16), suggestedExternal ?? IPAddress.Any);
        return m;
    }

    /// <summary>Parses a response to a MAP request made with <paramref name="nonce"/> for <paramref name="internalPort"/>.</summary>
    public static MappingReply ParseMapResponse(ReadOnlySpan<byte> d, ReadOnlySpan<byte> nonce, int internalPort)
    {
        if (d.Length >= 2 && d[0] == 0)
        {
            // A NAT-PMP-only gateway answers a PCP request with a version-0 "unsupported version" (RFC 6887 section 9).
            return d.Length >= 4 && BinaryPrimitives.ReadUInt16BigEndian(d[2..]) == 1
                ? new MappingReply(null, 1, "the gateway speaks NAT-PMP only", UnsupportedVersion: true)
                : MappingReply.Drop("a version-0 answer that is not 'unsupported version'");
        }
        if (d.Length < 24)
        {
            return MappingReply.Drop($"{d.Length} bytes, shorter than a PCP header");
        }
        if (d.Length > MaxLength || d.Length % 4 != 0)
        {
            return MappingReply.Drop($"{d.Length} bytes is not a valid PCP message length");
        }
        if (d[0] != Version)
        {
            return MappingReply.Drop($"PCP version {d[0]}");
        }
        if ((d[1] & 0x80) == 0)
        {
            return MappingReply.Drop("a request, not a response");
        }
        if ((d[1] & 0x7f) != OpcodeMap)
        {
            return MappingReply.Drop($"opcode {d[1] & 0x7f}, not MAP");
        }
        int result = d[3];
        var lifetime = BinaryPrimitives.ReadUInt32BigEndian(d[4..]);
        if (result == 1)
        {
            // The header of an "unsupported version" answer may carry no opcode body.
            return new MappingReply(null, 1, MappingResultCodes.Pcp(1), UnsupportedVersion: true);
        }
        if (d.Length < MapLength)
        {
            return MappingReply.Drop($"{d.Length} bytes, shorter than a MAP response");
        }
        if (!d.Slice(24, 12).SequenceEqual(nonce))
        {
            return MappingReply.Drop("the mapping nonce is not ours");
        }
        if (d[36] != ProtocolTcp || BinaryPrimitives.ReadUInt16BigEndian(d[40..]) != internalPort)
        {
            return MappingReply.Drop("the answer is for another protocol or port");
        }
        if (result != 0)
        {
            return new MappingReply(null, result, MappingResultCodes.Pcp(result), false);
        }
        var externalPort = BinaryPrimitives.ReadUInt16BigEndian(d[42..]);
        var external = ReadAddress(d.Slice(44, 16));
        if (lifetime != 0 && (externalPort == 0 || external.Equals(IPAddress.Any) || external.Equals(IPAddress.IPv6Any)))
        {
            return MappingReply.Drop("a success without an external address or port");
        }
        return new MappingReply(new GrantedMapping(new IPEndPoint(external, externalPort), internalPort, TimeSpan.FromSeconds(lifetime), "PCP"), 0, null, false);
    }

    private static void WriteAddress(Span<byte> into, IPAddress address)
    {
        var v6 = address.AddressFamily == AddressFamily.InterNetwork ? address.MapToIPv6() : address;
        if (!v6.TryWriteBytes(into, out var written) || written != 16)
        {
            throw new ArgumentException("not an IP address", nameof(address));
        }
    }

    private static IPAddress ReadAddress(ReadOnlySpan<byte> bytes)
    {
        var address = new IPAddress(bytes);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }
}
