using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using SecureMesh.Cli.Json;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// The build-time JSON metadata of the <c>--json</c> outputs: every output type has it, an enum anywhere in them is
/// written as a camelCase string (as the reflection serializer's converter did), and a type without metadata fails
/// loudly instead of printing <c>{}</c>.
/// </summary>
public sealed class CliJsonContextTests
{
    private static IEnumerable<Type> Outputs() =>
        typeof(CliJsonContext).CustomAttributes
            .Where(a => a.AttributeType == typeof(JsonSerializableAttribute))
            .Select(a => (Type)a.ConstructorArguments[0].Value!);

    [Fact]
    public void Every_output_type_and_everything_in_it_has_metadata()
    {
        var seen = new HashSet<Type>();
        var enums = new List<Type>();
        foreach (var type in Outputs())
        {
            Walk(type, seen, enums);
        }
        Assert.True(seen.Count > 40, $"only {seen.Count} types reached");
        foreach (var type in enums)
        {
            // Written as a string in camelCase: not a number.
            var json = JsonSerializer.Serialize(Enum.GetValues(type).GetValue(0), CliJsonContext.Output.GetTypeInfo(type)!);
            Assert.True(json.StartsWith('"') && char.IsLower(json[1]), $"{type} is written as {json}");
        }
    }

    [Fact]
    public void A_type_without_metadata_fails_instead_of_printing_an_empty_object()
    {
        Assert.Null(CliJsonContext.Output.GetTypeInfo(typeof(Uri)));
        var e = Assert.ThrowsAny<Exception>(() => JsonSerializer.Serialize(new Uri("https://example.com/"), CliJsonContext.Output.Options));
        Assert.True(e is NotSupportedException or InvalidOperationException, e.ToString());
    }

    private static void Walk(Type type, HashSet<Type> seen, List<Type> enums)
    {
        if (!seen.Add(type))
        {
            return;
        }
        var underlying = Nullable.GetUnderlyingType(type) ?? type;
        if (underlying.IsEnum)
        {
            enums.Add(underlying);
        }
        var info = CliJsonContext.Output.GetTypeInfo(type);
        Assert.True(info is not null, $"no metadata for {type}");
        if (info.Kind == JsonTypeInfoKind.Object)
        {
            foreach (var property in info.Properties)
            {
                Walk(property.PropertyType, seen, enums);
            }
        }
        else if (info.ElementType is { } element)
        {
            Walk(element, seen, enums);
        }
    }
}
