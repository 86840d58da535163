"""GraphQL documents shared by the API tests."""

CREATE_ORGANIZATION = """
mutation($name: String!, $type: OrganizationType! = CUSTOMER) {
  createOrganization(input: {name: $name, type: $type}) {
    organization { id name type }
    errors { field code message }
  }
}"""

CREATE_CONTRACT = """
mutation($org: ID!, $name: String!) {
  createContract(input: {organizationId: $org, name: $name}) {
    contract { id name organization { id name } }
    errors { field code message }
  }
}"""

SSL_DETAILS = """
  commonName validFrom validUntil issuedBy organization organizationalUnit location
  serialNumber signatureAlgorithm subjectAlternativeNames subjectAlternativeNameList
  fingerprintSha256 chainLength chainTrusted chainTrustError hostnameMatches chainPem
"""

DEVICE_FIELDS = f"""
  id name category active description domain lastUpdatedAt lastUpdateError
  organization {{ id name type }} contract {{ id name }} product {{ id name isSystem }}
  parent {{ id }} children {{ id name category }}
  sslSource {{ kind host port pem }}
  sslDetails {{ {SSL_DETAILS} }}
  updateSchedule {{ nextUpdateAt interval reason }}
  activity {{ id createdAt author text }}
  rawFiles {{ id createdAt fileName contentType sizeBytes sha256 url }}
"""

CREATE_DEVICE = f"""
mutation($input: CreateDeviceInput!) {{
  createDevice(input: $input) {{
    device {{ {DEVICE_FIELDS} }}
    errors {{ field code message }}
  }}
}}"""

UPDATE_DEVICE = f"""
mutation($id: ID!, $input: UpdateDeviceInput!, $updateDetails: Boolean = false) {{
  updateDevice(id: $id, input: $input, updateDetails: $updateDetails) {{
    device {{ {DEVICE_FIELDS} }}
    errors {{ field code message }}
  }}
}}"""

DEVICE = f"""
query($id: ID!) {{ device(id: $id) {{ {DEVICE_FIELDS} }} }}"""

DEVICE_COUNT = "query { devices { totalCount } }"
